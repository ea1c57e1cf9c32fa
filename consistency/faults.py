"""The fault switch the app honours: the replicas' apply delay."""

from __future__ import annotations

from consistency.replicas import replica_aliases, set_replica_apply_delay
from core.faults import FaultSpec, fault_register, faults_get

REPLICA_DELAY_SWITCH = "replica_delay_ms"


def replica_delay_apply(delay_ms: int) -> None:
    """Set every replica's ``recovery_min_apply_delay`` on the running standbys, when the
    switch changes (a PUT of all switches leaves an unchanged delay, and the replicas, alone)."""
    if faults_get(fresh=True).get(REPLICA_DELAY_SWITCH) == delay_ms:
        return
    for alias in replica_aliases():
        set_replica_apply_delay(alias, delay_ms)


def fault_switches_register() -> None:
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
