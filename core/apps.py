from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "statelab core"

    def ready(self) -> None:
        from django.core.signals import request_finished

        import core.checks  # noqa: F401 - registers the Celery at-least-once system check
        from core.faults import crash_points_register
        from core.logs import structlog_configure
        from core.metrics import (
            FaultsCollector,
            OutboxCollector,
            scrape_collector_register,
        )
        from core.middleware import request_id_clear
        from core.outbox import OUTBOX_CRASH_POINTS
        from core.request_id import task_signals_connect

        scrape_collector_register(FaultsCollector())
        scrape_collector_register(OutboxCollector())
        crash_points_register(*OUTBOX_CRASH_POINTS)
        task_signals_connect()
        structlog_configure()
        request_finished.connect(request_id_clear, dispatch_uid="core.request_id.clear")
