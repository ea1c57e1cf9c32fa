"""The whole service as separate processes, for benchmarks and chaos runs: gunicorn with
several workers, one or more Celery worker processes, and beat, on a port of its own.

Each process can be killed (SIGKILL), paused (SIGSTOP/SIGCONT) and restarted by name, which is
what a fault schedule needs. Logs go to ``log_dir``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def service_environment(port: int, multiproc_dir: Path, **extra: str) -> dict[str, str]:
    """Production-like: DEBUG off, metrics merged across processes. The settings module is
    inherited (``config.settings.local`` by default; tests run it on ``config.settings.test``
    with ``STATELAB_USE_TEST_DATABASES``)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.local"),
        "DJANGO_DEBUG": "false",
        "STATELAB_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        "STATELAB_LOG_LEVEL": os.environ.get("STATELAB_LOG_LEVEL", "WARNING"),
        # Benchmarks and chaos runs measure the service, not its rate limiter.
        "STATELAB_THROTTLE_AUTH": "1000000/min",
        "STATELAB_THROTTLE_TRANSFERS": "1000000/min",
        **extra,
    }


@dataclass
class Service:
    base_url: str
    log_dir: Path
    environment: dict[str, str]
    commands: dict[str, list[str]]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    _logs: list = field(default_factory=list)

    def start(self, name: str) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        self.processes[name] = subprocess.Popen(
            self.commands[name],
            cwd=ROOT,
            env=self.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def signal(self, name: str, signum: int) -> None:
        """Signal the process group of ``name`` (a Celery worker and its pool children)."""
        with suppress(ProcessLookupError):
            os.killpg(self.processes[name].pid, signum)

    def kill(self, name: str) -> None:
        self.signal(name, signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def restart(self, name: str) -> None:
        if self.processes[name].poll() is None:
            self.kill(name)
        self.start(name)

    def cpu_seconds(self, names: tuple[str, ...] | None = None) -> float:
        """CPU time used so far by every process of the service (or those of ``names``, e.g.
        ``("web",)``), children included."""
        total = 0.0
        for name, process in self.processes.items():
            if names is not None and name not in names:
                continue
            try:
                tree = psutil.Process(process.pid)
                members = [tree, *tree.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for member in members:
                with suppress(psutil.NoSuchProcess):
                    times = member.cpu_times()
                    total += times.user + times.system
        return total

    def stop(self) -> None:
        for name in self.processes:
            self.signal(name, signal.SIGCONT)
            self.signal(name, signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.signal(name, signal.SIGKILL)
                process.wait(timeout=10)
        for log in self._logs:
            log.close()


def wait_healthy(
    base_url: str, web: subprocess.Popen, log_path: Path, timeout_s: float = 60
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise SystemExit(f"gunicorn exited; see {log_path}")
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the service did not become healthy; see {log_path}")


def demo_tokens() -> dict[str, str]:
    """API tokens of the demo users, issued without a password round: password hashing at
    log-in must not fall into a measured window."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    return {
        user.username: Token.objects.get_or_create(user=user)[0].key
        for user in get_user_model().objects.filter(username__in=["alice", "bob", "admin"])
    }


@contextmanager
def service_running(
    port: int, log_dir: Path, *, web_workers: int = 4, celery_workers: int = 1, concurrency: int = 2
) -> Iterator[Service]:
    """Start web, ``celery_workers`` worker processes (named ``worker-1``...) and beat; always
    stop them all."""
    multiproc_dir = Path(tempfile.mkdtemp(prefix="statelab-metrics-"))
    python = sys.executable
    commands = {
        "web": [
            python,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "-c",
            "config/gunicorn.conf.py",
        ],
        "beat": [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(multiproc_dir / "beat-schedule"),
        ],
    }
    for number in range(1, celery_workers + 1):
        commands[f"worker-{number}"] = [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "--hostname",
            f"worker{number}-{port}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    environment = service_environment(
        port, multiproc_dir, STATELAB_WEB_WORKERS=str(web_workers), STATELAB_WEB_THREADS="4"
    )
    service = Service(
        base_url=f"http://127.0.0.1:{port}",
        log_dir=log_dir,
        environment=environment,
        commands=commands,
    )
    try:
        for name in commands:
            service.start(name)
        wait_healthy(service.base_url, service.processes["web"], log_dir / "web.log")
        service.tokens = demo_tokens()
        yield service
    finally:
        service.stop()
        shutil.rmtree(multiproc_dir, ignore_errors=True)
