from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "audit (reconciliation of accounts and ledger, read only)"
