"""Sharded counters and events over shard_0..shard_N-1, with hot-key spreading."""

from django.apps import AppConfig


class ShardingConfig(AppConfig):
    name = "sharding"
    verbose_name = "sharding"

    def ready(self) -> None:
        from core.faults import FaultSpec, crash_points_register, fault_register
        from core.metrics import scrape_collector_register
        from sharding.collector import ShardingCollector
        from sharding.conf import SPREADING_OFF_SWITCH
        from sharding.events import SLOW_SHARDS_SWITCH
        from sharding.folding import CRASH_AFTER_APPLY, CRASH_AFTER_TAKE, FOLD_PAUSE_SWITCH

        fault_register(
            FaultSpec(
                name=SLOW_SHARDS_SWITCH,
                kind="choices",
                default=[],
                description="Shards whose scatter-gather queries stall past the timeout.",
                choices=tuple(self._shard_aliases()),
            )
        )
        fault_register(
            FaultSpec(
                name=SPREADING_OFF_SWITCH,
                kind="flag",
                default=False,
                description="Stop spreading hot keys: every write of a key goes to its one row.",
            )
        )
        fault_register(
            FaultSpec(
                name=FOLD_PAUSE_SWITCH,
                kind="milliseconds",
                default=0,
                description=(
                    "Folds of cooled hot keys pause this long before forgetting the spread "
                    "(a slow fold, whose lease may run out while the key heats up again)."
                ),
            )
        )
        crash_points_register(CRASH_AFTER_TAKE, CRASH_AFTER_APPLY)
        scrape_collector_register(ShardingCollector())

    @staticmethod
    def _shard_aliases() -> list[str]:
        from django.conf import settings

        return list(settings.SHARD_ALIASES)

    def seed_demo(self, users: dict) -> None:
        """A few counters and events, once (a marker counter says it was done)."""
        from datetime import UTC, datetime, timedelta

        from sharding.counters import counter_get, counter_increment
        from sharding.events import event_create

        if counter_get(key="demo:seeded", use_cache=False).value:
            return
        for name in ("alice", "bob"):
            counter_increment(key=f"followers:{name}", by=3 if name == "alice" else 1)
        start = datetime.now(UTC) - timedelta(minutes=5)
        for index in range(6):
            event_create(
                key=f"user:{'alice' if index % 2 else 'bob'}",
                ts=start + timedelta(seconds=index),
                payload={"demo": index},
            )
        counter_increment(key="demo:seeded", by=1)
