from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "statelab core"

    def ready(self) -> None:
        from core.faults import crash_points_register
        from core.metrics import FaultsCollector, scrape_collector_register

        scrape_collector_register(FaultsCollector())
        crash_points_register()
