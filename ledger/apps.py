from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "ledger (transfers and journal)"

    def ready(self) -> None:
        from core.consumers import CRASH_BEFORE_ACK
        from core.faults import FaultSpec, crash_points_register, fault_register
        from core.metrics import scrape_collector_register
        from core.outbox import outbox_register
        from ledger.metrics import TransfersByStateCollector
        from ledger.models import LedgerOutbox
        from ledger.services import CRASH_POINTS

        outbox_register(LedgerOutbox, using="ledger")
        fault_register(
            FaultSpec(
                "saga_notification_down",
                "flag",
                False,
                "The notification service is down: notifications retry; money is unaffected.",
            )
        )
        crash_points_register(*CRASH_POINTS, CRASH_BEFORE_ACK)
        scrape_collector_register(TransfersByStateCollector())
