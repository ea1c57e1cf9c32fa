from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "ledger (transfers and journal)"

    def ready(self) -> None:
        import core.checks  # noqa: F401 - registers the Celery at-least-once system check
        from core.faults import FaultSpec, crash_points_register, fault_register
        from core.metrics import scrape_collector_register
        from core.outbox import outbox_register
        from ledger.metrics import OutboxCollector, TransfersByStateCollector
        from ledger.models import LedgerOutbox

        outbox_register(LedgerOutbox, using="ledger")
        fault_register(
            FaultSpec(
                "saga_notification_down",
                "flag",
                False,
                "The notification service is down: notifications retry; money is unaffected.",
            )
        )
        crash_points_register(
            "after_ledger_transition_commit",
            "after_notify_commit",
            "after_deposit_journal_commit",
            "before_outbox_publish",
            "after_outbox_send",
        )
        scrape_collector_register(TransfersByStateCollector())
        scrape_collector_register(OutboxCollector())
