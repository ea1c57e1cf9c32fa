"""The seed's replicated state machine on etcd: SET, DELETE, INCREMENT and compare-and-set over
one keyspace, each applied through an etcd transaction, so that every member applies the
same operations in the same (Raft log) order.

- ``set`` / ``delete``: one put / delete; answered with the revision etcd gave them.
- ``increment``: read the value and its ``mod_revision``, then a transaction that writes
  value + delta only if ``mod_revision`` is still the one read (compare-and-swap);
  retried on a lost race (``SMR_CAS_ATTEMPTS``), never on an unanswered request.
- ``cas``: a transaction that writes the new value only if the key holds ``expected``
  (``expected: null``: only if the key does not exist).

Values are JSON (stored as their text). Every answer carries the store's revision after the
operation, the Raft term of the member that answered, and that member's applied Raft index
read right after (at or past the entry that carried the operation: etcd's KV API does not
return an entry's own index).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from ha.errors import (
    SmrCompareFailed,
    SmrContended,
    SmrKeyInvalid,
    SmrNotANumber,
    SmrOperationInvalid,
    SmrOutcomeUnknown,
    SmrUnavailable,
)
from ha.etcd import EtcdClient, Header, KeyValue, b64
from ha.transport import MemberError, NoAnswer, NotSent

PREFIX = "/statelab/smr/"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
OPERATIONS = ("set", "delete", "increment", "cas")
SMR_CAS_ATTEMPTS = 20
MAX_VALUE_BYTES = 4096
MAX_DELTA = 10**15
LINEARIZABLE = "linearizable"
SERIALIZABLE = "serializable"
CONSISTENCIES = (LINEARIZABLE, SERIALIZABLE)


@dataclass(frozen=True)
class SmrResult:
    """The state of ``key`` after an operation (or as read)."""

    key: str
    value: Any
    exists: bool
    revision: int
    mod_revision: int
    version: int
    raft_term: int
    raft_index: int | None
    member: str
    attempts: int = 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def smr_key_check(key: object) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise SmrKeyInvalid(
            "A key is 1 to 200 characters among letters, digits and _ . : -", key=str(key)[:210]
        )
    return key


def _encode(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > MAX_VALUE_BYTES:
        raise SmrOperationInvalid(f"The value is larger than {MAX_VALUE_BYTES} bytes as JSON.")
    return text


def _decode(kv: KeyValue | None) -> Any:
    if kv is None:
        return None
    try:
        return json.loads(kv.value)
    except ValueError:
        return kv.value


def _put(key: str, text: str) -> dict:
    return {"request_put": {"key": b64(PREFIX + key), "value": b64(text), "prev_kv": True}}


def _range(key: str) -> dict:
    return {"request_range": {"key": b64(PREFIX + key)}}


def _kv_from_responses(responses: list[dict]) -> KeyValue | None:
    for response in responses:
        kvs = (response.get("response_range") or {}).get("kvs") or []
        if kvs:
            return KeyValue.of(kvs[0])
    return None


class StateMachine:
    """The keyspace under ``PREFIX`` of the etcd cluster ``client`` talks to."""

    def __init__(self, client: EtcdClient) -> None:
        self.client = client

    # ---- reads -----------------------------------------------------------------------

    def read(self, key: str, *, consistency: str = LINEARIZABLE) -> SmrResult:
        """The value of ``key``: linearizable (the member confirms with a quorum that it is
        current: a read after an acknowledged write sees it), or ``serializable`` (the member
        answers from its own copy, which may be behind)."""
        smr_key_check(key)
        if consistency not in CONSISTENCIES:
            raise SmrOperationInvalid(
                f"consistency must be one of {', '.join(CONSISTENCIES)}.", choices=CONSISTENCIES
            )
        try:
            header, kvs, url = self.client.range(
                PREFIX + key, serializable=consistency == SERIALIZABLE
            )
        except MemberError as error:
            raise SmrUnavailable(f"No etcd member answered the read: {error}") from None
        return self._result(key, header, kvs[0] if kvs else None, url, index=False)

    def keyspace(self, *, limit: int = 100) -> tuple[Header, list[dict[str, Any]]]:
        """Every key (up to ``limit``) with its value and revisions, linearizable."""
        try:
            header, kvs, _url = self.client.range(PREFIX, prefix=True)
        except MemberError as error:
            raise SmrUnavailable(f"No etcd member answered the read: {error}") from None
        keys = [
            {
                "key": kv.key.removeprefix(PREFIX),
                "value": _decode(kv),
                "mod_revision": kv.mod_revision,
                "create_revision": kv.create_revision,
                "version": kv.version,
            }
            for kv in kvs[:limit]
        ]
        return header, keys

    # ---- operations --------------------------------------------------------------------

    def apply(self, operation: object) -> SmrResult:
        """Apply one operation (``{"op", "key", ...}``), validated here."""
        if not isinstance(operation, dict):
            raise SmrOperationInvalid("The body must be an object with op and key.")
        op = operation.get("op")
        if op not in OPERATIONS:
            raise SmrOperationInvalid(
                f"op must be one of {', '.join(OPERATIONS)}.", choices=OPERATIONS
            )
        key = smr_key_check(operation.get("key"))
        if op == "set":
            if "value" not in operation:
                raise SmrOperationInvalid("set needs a value.")
            return self.set(key, operation["value"])
        if op == "delete":
            return self.delete(key)
        if op == "increment":
            delta = operation.get("delta", 1)
            if isinstance(delta, bool) or not isinstance(delta, int) or abs(delta) > MAX_DELTA:
                raise SmrOperationInvalid(f"delta must be an integer within ±{MAX_DELTA}.")
            return self.increment(key, delta)
        if "expected" not in operation or "value" not in operation:
            raise SmrOperationInvalid("cas needs expected (null: the key is absent) and value.")
        return self.cas(key, operation["expected"], operation["value"])

    def set(self, key: str, value: Any) -> SmrResult:
        text = _encode(value)
        header, _, responses, url = self._txn([], [_put(key, text), _range(key)])
        return self._result(key, header, _kv_from_responses(responses), url)

    def delete(self, key: str) -> SmrResult:
        request = {"request_delete_range": {"key": b64(PREFIX + key)}}
        header, _, _responses, url = self._txn([], [request])
        return self._result(key, header, None, url)

    def increment(self, key: str, delta: int) -> SmrResult:
        for attempt in range(1, SMR_CAS_ATTEMPTS + 1):
            current = self._current(key)
            value = _decode(current) if current is not None else 0
            if isinstance(value, bool) or not isinstance(value, int):
                raise SmrNotANumber(f"{key} holds {value!r}, not an integer.", key=key)
            guard = {
                "key": b64(PREFIX + key),
                "target": "MOD",
                "result": "EQUAL",
                "mod_revision": current.mod_revision if current is not None else 0,
            }
            header, succeeded, responses, url = self._txn(
                [guard], [_put(key, _encode(value + delta)), _range(key)]
            )
            if succeeded:
                result = self._result(key, header, _kv_from_responses(responses), url)
                return SmrResult(**{**result.as_dict(), "attempts": attempt})
        raise SmrContended(
            f"{key} changed under every one of {SMR_CAS_ATTEMPTS} attempts.", key=key
        )

    def cas(self, key: str, expected: Any, value: Any) -> SmrResult:
        if expected is None:
            guard = {"key": b64(PREFIX + key), "target": "VERSION", "result": "EQUAL", "version": 0}
        else:
            guard = {
                "key": b64(PREFIX + key),
                "target": "VALUE",
                "result": "EQUAL",
                "value": b64(_encode(expected)),
            }
        header, succeeded, responses, url = self._txn(
            [guard], [_put(key, _encode(value)), _range(key)], [_range(key)]
        )
        kv = _kv_from_responses(responses)
        if not succeeded:
            raise SmrCompareFailed(
                f"{key} does not hold the expected value; nothing changed.",
                key=key,
                value=_decode(kv),
                exists=kv is not None,
                revision=header.revision,
            )
        return self._result(key, header, kv, url)

    # ---- plumbing ------------------------------------------------------------------------

    def _current(self, key: str) -> KeyValue | None:
        try:
            _header, kvs, _url = self.client.range(PREFIX + key)
        except MemberError as error:
            raise SmrUnavailable(f"No etcd member answered: {error}") from None
        return kvs[0] if kvs else None

    def _txn(self, compare: list, success: list, failure: list | None = None) -> tuple:
        try:
            return self.client.txn(compare, success, failure)
        except NotSent as error:
            raise SmrUnavailable(f"No etcd member took the operation: {error}") from None
        except NoAnswer as error:
            raise SmrOutcomeUnknown(
                f"etcd did not answer; the operation may have been applied: {error}"
            ) from None

    def _result(
        self, key: str, header: Header, kv: KeyValue | None, url: str, *, index: bool = True
    ) -> SmrResult:
        raft_index = None
        if index:
            try:
                raft_index = self.client.status(url)["raft_applied_index"]
            except MemberError:
                raft_index = None
        return SmrResult(
            key=key,
            value=_decode(kv),
            exists=kv is not None,
            revision=header.revision,
            mod_revision=kv.mod_revision if kv is not None else 0,
            version=kv.version if kv is not None else 0,
            raft_term=header.raft_term,
            raft_index=raft_index,
            member=url,
        )


def state_machine() -> StateMachine:
    from ha.etcd import etcd_client

    return StateMachine(etcd_client())
