"""A real Celery worker process for tests, on the test databases and the real Redis broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from django.conf import settings

from config.celery import app

ROOT = Path(__file__).resolve().parent.parent


def worker_environment(**extra: str) -> dict[str, str]:
    """The environment of a process that must see what this test process sees."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "STATELAB_USE_TEST_DATABASES": "true",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "REDIS_URL": settings.REDIS_URL,
        **extra,
    }


class WorkerProcess:
    """One ``celery worker`` process tree; ``kill()`` is a SIGKILL of the whole group."""

    def __init__(
        self,
        hostname: str,
        concurrency: int,
        log_path: Path,
        include: tuple[str, ...] = (),
        *,
        beat: bool = False,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.hostname = hostname
        self.log_path = log_path
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--hostname",
            hostname,
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ]
        if include:
            command += ["--include", ",".join(include)]
        if beat:
            command += ["--beat", "--schedule", str(log_path.with_suffix(".beat-schedule"))]
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=worker_environment(**(environment or {})),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited; see {self.log_path}:\n{self.log_tail()}")
            replies = app.control.ping(destination=[self.hostname], timeout=0.5)
            if replies:
                return
        raise RuntimeError(f"worker not ready in {timeout_s} s; see {self.log_path}")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def children_killed(self) -> int:
        """Pool processes this worker saw die of SIGKILL (a crash point fired there)."""
        return self.log_path.read_text(errors="replace").count("exited with 'signal 9")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(timeout=30)
        self._log.close()

    def _signal_group(self, signum: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


@contextmanager
def celery_worker(
    tmp_path: Path,
    concurrency: int = 2,
    name: str = "test",
    include: tuple[str, ...] = (),
    *,
    beat: bool = False,
    environment: dict[str, str] | None = None,
) -> Iterator[WorkerProcess]:
    """Start a worker, wait until it answers a ping, and always stop its whole process group.

    ``include`` names extra modules to import (tasks defined by a test module); ``beat`` embeds
    the periodic-task scheduler (every entry of ``CELERY_BEAT_SCHEDULE``); ``environment``
    adds variables to the worker's."""
    hostname = f"{name}-{os.getpid()}-{time.monotonic_ns()}@localhost"
    worker = WorkerProcess(
        hostname,
        concurrency,
        tmp_path / f"worker-{name}.log",
        include,
        beat=beat,
        environment=environment,
    )
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
