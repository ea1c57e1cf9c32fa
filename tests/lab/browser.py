"""Headless Chromium (Debian's ``chromium`` package) for the lab's browser test, and the real
service it drives: gunicorn on a free port, on this run's test databases."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import free_port
from tests.workers import ROOT, worker_environment

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"


def _found() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


def chromium_ensure() -> tuple[str | None, str]:
    """The Chromium binary, installing Debian's package when missing and allowed (root with
    apt-get); else None and the reason it cannot be had."""
    found = _found()
    if found:
        return found, ""
    if not shutil.which("apt-get"):
        return None, "chromium is not installed and this system has no apt-get"
    if os.geteuid() != 0:
        return None, "chromium is not installed; installing it needs root (apt-get)"
    log = []
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            check=False,
        )
        log.append(completed.stdout[-500:] + completed.stderr[-500:])
        if completed.returncode != 0:
            return None, f"`{' '.join(command)}` failed: {log[-1].strip()[-300:]}"
    found = _found()
    return (found, "") if found else (None, "apt-get installed chromium but no binary was found")


class WebServer:
    """gunicorn serving config.wsgi on 127.0.0.1:<free port> against the test databases."""

    def __init__(
        self, tmp_path: Path, workers: int = 2, threads: int = 4, **environment: str
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "gunicorn.log"
        multiproc = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tmp_path / "prometheus")
        multiproc.mkdir(exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "-c",
                "config/gunicorn.conf.py",
            ],
            cwd=ROOT,
            env=worker_environment(
                PROMETHEUS_MULTIPROC_DIR=str(multiproc),
                STATELAB_BIND=f"127.0.0.1:{self.port}",
                STATELAB_WEB_WORKERS=str(workers),
                STATELAB_WEB_THREADS=str(threads),
                **environment,
            ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=2):  # noqa: S310
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn not ready in {timeout_s} s; see {self.log_path}")

    def stop(self) -> None:
        if self._log.closed:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
        self._log.close()


@contextmanager
def web_server(tmp_path: Path, **environment: str) -> Iterator[WebServer]:
    """``environment``: variables that differ from this test process's (e.g. a dead Redis)."""
    server = WebServer(tmp_path, **environment)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
