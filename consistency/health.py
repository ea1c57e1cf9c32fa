"""The replicas' part of ``/readyz``: each one's replay position and lag, by alias."""

from __future__ import annotations

from consistency.replicas import replica_positions


def replicas_readiness() -> dict[str, dict]:
    return {
        f"database:{alias}": position.as_dict() for alias, position in replica_positions().items()
    }
