"""Where a routed read goes: the decision, and the database router that asks for it."""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.conf import settings

from consistency.context import consistency_current, is_pinned
from consistency.levels import EVENTUAL, PRIMARY, STRONG
from consistency.pool import replica_pool
from consistency.replicas import NO_POSITION


@dataclass(frozen=True)
class ReadDecision:
    alias: str
    reason: str


def read_decision(key: str | None = None) -> ReadDecision:
    """Where a routed read of ``key`` goes now; the reason is kept on the context."""
    decision = _decide(key)
    context = consistency_current()
    if context is not None:
        context.last_reason = decision.reason
    return decision


def _decide(key: str | None) -> ReadDecision:  # noqa: PLR0911 - one return per reason
    """Where a routed read of ``key`` goes under the current context, and why.

    Reasons: ``pinned``, ``no_context``, ``strong``, ``eventual``, ``caught_up`` (a replica has
    the session's write), ``behind`` (no replica has it yet, or, written on an older timeline
    beyond where it ended, none ever will: a stale read prevented),
    ``no_replica`` (none in rotation), ``state_unavailable`` (the session's positions cannot be
    read, so only the primary is safe).
    """
    context = consistency_current()
    if is_pinned():
        return ReadDecision(PRIMARY, "pinned")
    if context is None:
        return ReadDecision(PRIMARY, "no_context")
    if context.level == STRONG:
        return ReadDecision(PRIMARY, "strong")
    if context.level == EVENTUAL:
        states = replica_pool.states(required=NO_POSITION)
        in_rotation = [state for state in states.values() if state.in_rotation]
        if not in_rotation:
            return ReadDecision(PRIMARY, "no_replica")
        return ReadDecision(random.choice(in_rotation).alias, "eventual")  # noqa: S311
    state = context.session_state()
    if state is None:
        return ReadDecision(PRIMARY, "state_unavailable")
    required = state.required_position(key)
    states = replica_pool.states(required=required)
    in_rotation = [replica for replica in states.values() if replica.in_rotation]
    if not in_rotation:
        return ReadDecision(PRIMARY, "no_replica")
    eligible = [replica for replica in in_rotation if replica_pool.holds(replica, required)]
    if not eligible:
        return ReadDecision(PRIMARY, "behind")
    if key is not None and required.lsn and len(eligible) == len(states):
        context.forget_caught_up(key, required)
    return ReadDecision(random.choice(eligible).alias, "caught_up")  # noqa: S311


class ConsistencyRouter:
    """Decides reads of the apps in ``CONSISTENCY_ROUTED_APPS`` by the current consistency
    context; says nothing about anything else, so the routers listed after it keep every
    other decision.

    What lag means for callers: under ``session`` (the default) a read goes to a replica only
    when that replica has replayed the session's write of the object (queryset hint
    ``consistency_key``), else to the primary; under ``eventual`` any replica in rotation, so
    the result may be older than the caller's own write; ``strong``, ``pin_to_primary()`` and
    code running outside any context (shell, admin, migrations) read the primary.
    """

    def db_for_read(self, model, **hints) -> str | None:
        if model._meta.app_label not in settings.CONSISTENCY_ROUTED_APPS:
            return None
        instance = hints.get("instance")
        if instance is not None and instance._state.db:
            return instance._state.db
        return read_decision(hints.get("consistency_key")).alias

    def db_for_write(self, model, **hints) -> str | None:
        return None

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        return None

    def allow_migrate(self, db: str, app_label: str, model_name=None, **hints) -> bool | None:
        return None
