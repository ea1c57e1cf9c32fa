"""The quorum store's configuration (settings.QUORUM_NODE_URLS and settings.QUORUM), parsed once
per distinct settings value so that tests that override settings get a fresh one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import TypedDict
from urllib.parse import unquote, urlsplit

from django.conf import settings

from quorum.ring import Ring

NODE_CONTROLS = ("processes", "proxy")


class ConnectionParams(TypedDict):
    """``psycopg.connect``'s keyword arguments for one node."""

    host: str
    port: int
    dbname: str
    user: str
    password: str


@dataclass(frozen=True)
class NodeAddress:
    """Where the coordinator reaches one storage node (through the link proxy when embedded)."""

    name: str
    host: str
    port: int
    dbname: str
    user: str
    password: str

    def conninfo(self) -> ConnectionParams:
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "password": self.password,
        }

    def with_database(self, dbname: str) -> NodeAddress:
        return NodeAddress(self.name, self.host, self.port, dbname, self.user, self.password)


@dataclass(frozen=True)
class QuorumConf:
    nodes: tuple[NodeAddress, ...]
    node_control: str
    proxy_control: tuple[str, int]
    vnodes: int
    default_n: int
    default_w: int
    default_r: int
    node_timeout_s: float
    request_timeout_s: float
    connect_timeout_s: int
    pool_size: int
    suspect_s: float
    max_value_bytes: int
    handoff_batch: int
    context_key: bytes

    @property
    def node_names(self) -> list[str]:
        return [node.name for node in self.nodes]

    def node(self, name: str) -> NodeAddress | None:
        return next((node for node in self.nodes if node.name == name), None)

    def node_named(self, name: str) -> NodeAddress:
        """The node `name`, which the caller knows is one of ``nodes`` (the ring's, a checked
        hint's)."""
        node = self.node(name)
        if node is None:
            raise LookupError(f"no quorum node is named {name!r}")
        return node

    def ring(self) -> Ring:
        return _ring(tuple(self.node_names), self.vnodes)


def parse_node_url(url: str, name: str) -> NodeAddress:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"} or not parts.hostname:
        raise ValueError(f"QUORUM_NODE_URLS: {url!r} is not a postgres://user:pass@host:port/db")
    return NodeAddress(
        name=name,
        host=parts.hostname,
        port=parts.port or 5432,
        dbname=unquote(parts.path.lstrip("/")) or "postgres",
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"QUORUM proxy_control must be host:port, got {text!r}")
    return host or "127.0.0.1", int(port)


@lru_cache(maxsize=8)
def _ring(nodes: tuple[str, ...], vnodes: int) -> Ring:
    return Ring(nodes, vnodes)


@lru_cache(maxsize=8)
def _conf(
    urls: tuple[str, ...], options: tuple[tuple[str, str | int], ...], secret: str
) -> QuorumConf:
    values = dict(options)
    control = str(values["node_control"])
    if control not in NODE_CONTROLS:
        raise ValueError(f"QUORUM node_control must be one of {NODE_CONTROLS}, got {control!r}")
    return QuorumConf(
        nodes=tuple(parse_node_url(url, f"n{number}") for number, url in enumerate(urls, 1)),
        node_control=control,
        proxy_control=_host_port(str(values["proxy_control"])),
        vnodes=int(values["vnodes"]),
        default_n=int(values["n"]),
        default_w=int(values["w"]),
        default_r=int(values["r"]),
        node_timeout_s=int(values["node_timeout_ms"]) / 1000,
        request_timeout_s=int(values["request_timeout_ms"]) / 1000,
        connect_timeout_s=max(2, int(values["connect_timeout_s"])),
        pool_size=int(values["pool_size"]),
        suspect_s=int(values["suspect_ms"]) / 1000,
        max_value_bytes=int(values["max_value_bytes"]),
        handoff_batch=int(values["handoff_batch"]),
        context_key=hashlib.sha256(b"statelab-quorum-context\0" + secret.encode()).digest(),
    )


def conf() -> QuorumConf:
    return _conf(
        tuple(settings.QUORUM_NODE_URLS),
        tuple(sorted(settings.QUORUM.items())),
        settings.SECRET_KEY,
    )
