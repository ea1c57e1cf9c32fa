from django.apps import AppConfig


class ConsistencyConfig(AppConfig):
    """Registers what the app owns: the Celery receivers that carry positions into tasks, its
    fault switches, the replica collectors, the replicas' readiness and the wiring check.
    The middleware and the router cannot be registered by an app: settings list them, and the
    wiring check fails the start when they are missing or misplaced."""

    name = "consistency"
    verbose_name = "consistency (replicas, read routing)"

    def ready(self) -> None:
        from django.core.checks import register

        from consistency.celery import task_signals_connect
        from consistency.checks import consistency_wiring_check
        from consistency.faults import fault_switches_register
        from consistency.health import replicas_readiness
        from consistency.metrics import ReplicaLagCollector, ReplicaRotationCollector
        from core.health import readiness_check_register
        from core.metrics import scrape_collector_register

        register(consistency_wiring_check, "consistency")
        task_signals_connect()
        fault_switches_register()
        scrape_collector_register(ReplicaLagCollector())
        scrape_collector_register(ReplicaRotationCollector())
        readiness_check_register(replicas_readiness)
