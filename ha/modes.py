"""The replication modes, as Patroni's dynamic configuration has them.

- ``async`` (``synchronous_mode: false``): a commit returns once the leader flushed it; the
  standbys may lack it.
- ``sync`` (``synchronous_mode: true``): once k standbys flushed it (``FIRST k``); with no
  standby left, Patroni drops to async.
- ``sync_apply`` (``sync`` + ``synchronous_commit: remote_apply``): once k standbys applied it,
  so a read there right after sees it.
- ``strict`` (``sync`` + ``synchronous_mode_strict: true``): never without k standbys: with
  none, writes wait.
- ``quorum`` (``synchronous_mode: quorum``): once any k of the standbys flushed it (``ANY k``).

k is ``synchronous_node_count`` (1 by default). Patroni fails over only to a standby that was
synchronous (or, in quorum mode, to one of a quorum that must have the write), so in every
mode but ``async`` a commit that returned survives the leader's death.
"""

from __future__ import annotations

from typing import Any

from ha.errors import HaModeInvalid

ASYNC = "async"
SYNC = "sync"
SYNC_APPLY = "sync_apply"
STRICT = "strict"
QUORUM = "quorum"
MODES = (ASYNC, SYNC, SYNC_APPLY, STRICT, QUORUM)
SYNCHRONOUS_MODES = (SYNC, SYNC_APPLY, STRICT, QUORUM)
SYNCHRONOUS_COMMITS = ("on", "remote_write", "remote_apply")
MAX_SYNC_NODES = 2


def mode_patch(
    mode: str, *, sync_node_count: int = 1, synchronous_commit: str | None = None
) -> dict[str, Any]:
    """The PATCH of Patroni's dynamic configuration that puts ``mode`` in force.

    ``synchronous_commit`` overrides what a commit waits for on the synchronous standbys
    (``remote_apply`` with ``quorum`` is "ANY k applied it"); by default the mode's own."""
    if mode not in MODES:
        raise HaModeInvalid(f"Unknown mode {mode!r}; use one of {', '.join(MODES)}.", modes=MODES)
    if not 1 <= sync_node_count <= MAX_SYNC_NODES:
        raise HaModeInvalid(
            f"sync_node_count must be between 1 and {MAX_SYNC_NODES} (two standbys)."
        )
    if synchronous_commit is not None and synchronous_commit not in SYNCHRONOUS_COMMITS:
        raise HaModeInvalid(
            f"synchronous_commit must be one of {', '.join(SYNCHRONOUS_COMMITS)}.",
            choices=SYNCHRONOUS_COMMITS,
        )
    synchronous_modes: dict[str, bool | str] = {ASYNC: False, QUORUM: "quorum"}
    synchronous_mode = synchronous_modes.get(mode, True)
    commit = synchronous_commit or ("remote_apply" if mode == SYNC_APPLY else "on")
    return {
        "synchronous_mode": synchronous_mode,
        "synchronous_mode_strict": mode == STRICT,
        "synchronous_node_count": sync_node_count,
        "postgresql": {"parameters": {"synchronous_commit": commit}},
    }


def mode_of(dynamic_config: dict[str, Any]) -> str:
    """The mode a dynamic configuration puts in force."""
    synchronous_mode = dynamic_config.get("synchronous_mode", False)
    if synchronous_mode == "quorum":
        return QUORUM
    if synchronous_mode is not True and str(synchronous_mode).lower() not in {"true", "on"}:
        return ASYNC
    if dynamic_config.get("synchronous_mode_strict"):
        return STRICT
    if synchronous_commit_of(dynamic_config) == "remote_apply":
        return SYNC_APPLY
    return SYNC


def synchronous_commit_of(dynamic_config: dict[str, Any]) -> str:
    parameters = (dynamic_config.get("postgresql") or {}).get("parameters") or {}
    return str(parameters.get("synchronous_commit", "on"))
