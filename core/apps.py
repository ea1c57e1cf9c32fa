from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "statelab core"

    def ready(self) -> None:
        import core.checks  # noqa: F401 - registers the Celery at-least-once system check
        from core.faults import crash_points_register
        from core.metrics import (
            FaultsCollector,
            OutboxCollector,
            scrape_collector_register,
        )
        from core.outbox import OUTBOX_CRASH_POINTS

        scrape_collector_register(FaultsCollector())
        scrape_collector_register(OutboxCollector())
        crash_points_register(*OUTBOX_CRASH_POINTS)
