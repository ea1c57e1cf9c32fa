"""The fault switches the app honours.

``replica_delay_ms``: the replicas' apply delay. Its effect lives in the replicas, not in the
stored value: a replica restarted by its stack starts with the stack's configured delay. So
the switch reports the delay the replicas really have (``read_in_force``) and every set
applies it, even when the stored value already matches.

``consistency_position_save_failure_rate``: the share of writes whose WAL position is not
saved after their commit (as if the save failed); their version floor, saved in the write's
transaction, must keep read-your-writes on its own.
"""

from __future__ import annotations

from django.db import DatabaseError, connections

from consistency.replicas import replica_aliases, replica_apply_delay_ms, set_replica_apply_delay
from core.faults import FaultSpec, fault_register

REPLICA_DELAY_SWITCH = "replica_delay_ms"
POSITION_SAVE_FAILURE_SWITCH = "consistency_position_save_failure_rate"


def replica_delay_apply(delay_ms: int) -> None:
    """Set every replica's ``recovery_min_apply_delay`` on the running standbys."""
    for alias in replica_aliases():
        set_replica_apply_delay(alias, delay_ms)


def replica_delay_in_force() -> int | None:
    """The largest delay a reachable replica has in force; None when none answers."""
    delays = []
    for alias in replica_aliases():
        try:
            delays.append(replica_apply_delay_ms(alias))
        except DatabaseError:
            connections[alias].close()
    return max(delays, default=None)


def fault_switches_register() -> None:
    fault_register(
        FaultSpec(
            name=REPLICA_DELAY_SWITCH,
            kind="milliseconds",
            default=0,
            description="Replicas' apply delay (recovery_min_apply_delay), applied to the "
            "running standbys: makes replication lag, and eventual reads' staleness, visible. "
            "Reports the delay the replicas have in force.",
            max_value=60_000,
            apply=replica_delay_apply,
            read_in_force=replica_delay_in_force,
        )
    )
    fault_register(
        FaultSpec(
            name=POSITION_SAVE_FAILURE_SWITCH,
            kind="probability",
            default=0.0,
            description="Share of writes whose WAL position is lost after the commit; their "
            "version floor, saved in the write's transaction, keeps read-your-writes.",
        )
    )
