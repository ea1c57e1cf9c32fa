from django.apps import AppConfig

REPLICA_DELAY_SWITCH = "replica_delay_ms"


def replica_delay_apply(delay_ms: int) -> None:
    """Set every replica's ``recovery_min_apply_delay`` on the running standbys, when the
    switch changes (a PUT of all switches leaves an unchanged delay, and the replicas, alone)."""
    from django.conf import settings

    from core.faults import faults_get
    from core.replicas import set_replica_apply_delay

    if faults_get(fresh=True).get(REPLICA_DELAY_SWITCH) == delay_ms:
        return
    for alias in settings.REPLICA_ALIASES:
        set_replica_apply_delay(alias, delay_ms)


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "profiles (session consistency)"

    def ready(self) -> None:
        from core.faults import FaultSpec, fault_register
        from core.metrics import scrape_collector_register
        from profiles import signals  # noqa: F401 - connects the receivers
        from profiles.metrics import ReplicaRotationCollector

        fault_register(
            FaultSpec(
                name=REPLICA_DELAY_SWITCH,
                kind="milliseconds",
                default=0,
                description="Replicas' apply delay (recovery_min_apply_delay), applied to the "
                "running standbys: makes replication lag, and eventual reads' staleness, visible.",
                max_value=60_000,
                apply=replica_delay_apply,
            )
        )
        scrape_collector_register(ReplicaRotationCollector())

    def seed_demo(self, users: dict) -> None:
        from profiles.services import profile_ensure, profile_update

        demo = {
            "alice": {"display_name": "Alice", "bio": "Sees her own edits at once."},
            "bob": {"display_name": "Bob", "bio": "Reads profiles from the replica."},
            "admin": {"display_name": "Admin"},
        }
        for username, user in users.items():
            profile = profile_ensure(user_id=user.pk)
            if not profile.display_name and username in demo:
                profile_update(user_id=user.pk, changes=demo[username], actor_id=user.pk)
