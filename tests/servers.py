"""Throwaway real servers, for tests that stop a dependency without touching the stack."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from devstack.binaries import redis_server_path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def disposable_redis(workdir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real redis-server on a free loopback port; yields its URL and process, always stopped."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(redis_server_path()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)
