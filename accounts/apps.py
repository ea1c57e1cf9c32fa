from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "accounts (balances)"

    def ready(self) -> None:
        from accounts.models import AccountsOutbox
        from accounts.services import CRASH_POINTS
        from core.consumers import CRASH_BEFORE_ACK
        from core.faults import FaultSpec, crash_points_register, fault_register
        from core.outbox import outbox_register

        outbox_register(AccountsOutbox, using="accounts")
        fault_register(
            FaultSpec(
                "saga_credit_failure_rate",
                "probability",
                0.0,
                "Probability that crediting the destination fails (the saga compensates).",
            )
        )
        fault_register(
            FaultSpec(
                "saga_step_latency_ms",
                "milliseconds",
                0,
                "Latency added to each debit, credit and ledger transition step.",
                max_value=10_000,
            )
        )
        crash_points_register(*CRASH_POINTS, CRASH_BEFORE_ACK)

    def seed_demo(self, users: dict) -> None:
        """alice and bob get one EUR account each with an opening deposit (once)."""
        from accounts.models import Account
        from accounts.services import account_create, account_deposit

        for name, opening in (("alice", "1000.00"), ("bob", "500.00")):
            user = users[name]
            if Account.objects.using("accounts").filter(owner_id=user.pk).exists():
                continue
            account = account_create(owner_id=user.pk, currency="EUR")
            account_deposit(account_id=account.id, amount=opening)
