from django.apps import AppConfig


class HaConfig(AppConfig):
    """Registers the cluster's readiness (members, roles, timeline, lag; etcd's quorum) and,
    when Patroni manages the standbys, the way their apply delay is set (its dynamic
    configuration: Patroni undoes ALTER SYSTEM)."""

    name = "ha"
    verbose_name = "high availability (Patroni, etcd)"

    def ready(self) -> None:
        from django.conf import settings

        from consistency.replicas import apply_delay_setter_register
        from core.health import readiness_check_register
        from ha.health import ha_readiness
        from ha.services import standby_apply_delay_set

        readiness_check_register(ha_readiness)
        if settings.PATRONI_URLS:
            apply_delay_setter_register(standby_apply_delay_set)
