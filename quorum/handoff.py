"""Hinted handoff: versions a sloppy write left on a stand-in node go to the node they were
meant for once it answers again, and leave the stand-in only after that node acknowledged.

``hints_hand_off`` runs from a Celery beat task (``quorum.hints_handoff``) every few seconds;
it is safe to run twice or concurrently: storing a version is idempotent (insert-only per
dot, and one already made obsolete is not stored again), and a hint is deleted by id only
after its delivery was acknowledged, so a crash between the two re-delivers it, never loses it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import wait
from functools import partial

from quorum import metrics
from quorum.client import NodeCallFailed, health, node_call, node_submit
from quorum.conf import conf
from quorum.storage import Hint, hints_count, hints_delete, hints_read, versions_store

logger = logging.getLogger(__name__)


def hints_pending(*, timeout_s: float) -> dict[str, dict[str, int] | None]:
    """Per holder node: hints pending per intended node (None for a node that did not answer)."""
    settings = conf()
    futures = {
        node.name: node_submit(node, hints_count, timeout_s=timeout_s) for node in settings.nodes
    }
    wait(list(futures.values()), timeout=timeout_s + 0.1)
    pending: dict[str, dict[str, int] | None] = {}
    for name, future in futures.items():
        pending[name] = future.result() if future.done() and future.exception() is None else None
    return pending


def _deliver(holder: str, intended: str, hints: list[Hint]) -> int:
    """Store `hints` on `intended`, then delete them from `holder`; the number delivered."""
    settings = conf()
    by_key: dict[str, list[Hint]] = defaultdict(list)
    for hint in hints:
        by_key[hint.key].append(hint)
    delivered: list[int] = []
    for key, key_hints in by_key.items():
        node_call(
            settings.node_named(intended),
            partial(versions_store, key=key, versions=[hint.stored for hint in key_hints]),
            timeout_s=settings.node_timeout_s,
        )
        delivered += [hint.id for hint in key_hints]
    node_call(
        settings.node_named(holder),
        lambda conn: hints_delete(conn, ids=delivered),
        timeout_s=settings.node_timeout_s,
    )
    metrics.hints_handed_off_total.labels(intended).inc(len(delivered))
    return len(delivered)


def hints_hand_off() -> dict[str, int]:
    """One pass over every node's hints (a batch each): deliver those whose intended node
    answers. Returns delivered counts per intended node."""
    settings = conf()
    delivered: dict[str, int] = defaultdict(int)
    for holder in settings.nodes:
        try:
            hints = node_call(
                holder,
                lambda conn: hints_read(conn, limit=settings.handoff_batch),
                timeout_s=settings.node_timeout_s,
            )
        except NodeCallFailed as error:
            logger.debug("hints of %s not read: %s", holder.name, error)
            continue
        grouped: dict[str, list[Hint]] = defaultdict(list)
        for hint in hints:
            grouped[hint.intended].append(hint)
        for intended, intended_hints in grouped.items():
            if settings.node(intended) is None:
                logger.warning("%s holds hints for unknown node %s", holder.name, intended)
                continue
            if health().suspected(intended):
                continue
            try:
                delivered[intended] += _deliver(holder.name, intended, intended_hints)
            except NodeCallFailed as error:
                logger.info("hints for %s stay on %s: %s", intended, holder.name, error)
    return dict(delivered)
