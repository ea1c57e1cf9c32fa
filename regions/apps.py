"""Active-active regions: versions with dotted version vectors, CRDTs, partitions through a
link proxy, Merkle anti-entropy (architecture section 9)."""

from django.apps import AppConfig


class RegionsConfig(AppConfig):
    name = "regions"
    verbose_name = "regions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.health import readiness_check_register
        from core.metrics import scrape_collector_register
        from regions.health import regions_readiness
        from regions.metrics import RegionsCollector

        scrape_collector_register(RegionsCollector())
        readiness_check_register(regions_readiness)
