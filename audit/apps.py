from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "audit (reconciliation of accounts and ledger, read only)"

    def ready(self) -> None:
        from audit.metrics import ReconciliationCollector
        from core.metrics import scrape_collector_register

        scrape_collector_register(ReconciliationCollector())
