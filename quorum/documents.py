"""The JSON documents of the quorum API (answers and problem details share them)."""

from __future__ import annotations

from typing import Any

from quorum.coordinator import ReadResult, WriteResult
from quorum.storage import StoredVersion


def overlap(*, n: int, w: int, r: int) -> dict[str, Any]:
    return {"n": n, "w": w, "r": r, "w_plus_r_gt_n": w + r > n}


def _version(stored: StoredVersion, *, with_value: bool = True) -> dict[str, Any]:
    document: dict[str, Any] = {
        "dot": stored.dot.as_list(),
        "context": stored.version.context.as_dict(),
    }
    if with_value:
        document["value"] = stored.value
    return document


def write_document(result: WriteResult, *, r: int) -> dict[str, Any]:
    return {
        "key": result.key,
        "n": result.n,
        "w": result.w,
        "sloppy": result.sloppy,
        "preference_list": result.preference_list,
        "coordinator": result.coordinator,
        "dot": result.dot.as_list() if result.dot else None,
        "acknowledged": [ack.as_dict() for ack in result.acknowledged],
        "acknowledgements_counted": result.counted,
        "hinted": [
            {"node": ack.node, "hint_for": ack.intended}
            for ack in result.acknowledged
            if ack.hinted
        ],
        "pending": result.pending,
        "failed": [failure.as_dict() for failure in result.failed],
        "overlap": overlap(n=result.n, w=result.w, r=r),
        "elapsed_ms": round(result.elapsed_ms, 1),
    }


def read_document(result: ReadResult, *, w: int) -> dict[str, Any]:
    values = [stored.value for stored in result.siblings]
    return {
        "key": result.key,
        "n": result.n,
        "r": result.r,
        "preference_list": result.preference_list,
        "asked": result.asked,
        "answered": result.answered,
        "failed": [failure.as_dict() for failure in result.failed],
        "versions_seen": {
            node: [_version(stored) for stored in sorted(stored_list, key=lambda s: s.dot)]
            for node, stored_list in result.versions_seen.items()
        },
        "siblings": [_version(stored) for stored in result.siblings],
        "value": values[0] if len(values) == 1 else None,
        "repairs": [repair.as_dict() for repair in result.repairs],
        "overlap": overlap(n=result.n, w=w, r=result.r),
        "elapsed_ms": round(result.elapsed_ms, 1),
    }
