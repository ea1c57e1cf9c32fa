"""Metrics stay right when gunicorn serves from several worker processes."""

import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 40
HEALTHZ_COUNTER = (
    "django_http_requests_total_by_view_transport_method_total"
    '{method="GET",transport="http",view="healthz"}'
)


def _get(url: str, timeout_s: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - loopback URL
        return response.read()


@pytest.fixture
def gunicorn_two_workers(tmp_path):
    port = free_port()
    multiproc_dir = tmp_path / "prometheus"
    multiproc_dir.mkdir()
    environment = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "STATELAB_BIND": f"127.0.0.1:{port}",
        "STATELAB_WEB_WORKERS": "2",
        "STATELAB_WEB_THREADS": "1",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "-c",
            "config/gunicorn.conf.py",
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while len(_worker_files(multiproc_dir)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        yield base, multiproc_dir
    finally:
        process.terminate()
        process.wait(timeout=20)


def _worker_files(multiproc_dir: Path) -> list[Path]:
    return sorted(multiproc_dir.glob("counter_*.db"))


def _healthz_served_per_worker(multiproc_dir: Path) -> list[float]:
    """Each worker process's own count of healthz requests, from its sample file."""
    counts = []
    for path in _worker_files(multiproc_dir):
        values = MmapedDict.read_all_values_from_file(str(path))
        counts.append(
            sum(
                value
                for key, value, _timestamp, _position in values
                if "requests_total_by_view_transport_method" in key and '"healthz"' in key
            )
        )
    return counts


def test_metrics_count_requests_served_by_every_gunicorn_worker(gunicorn_two_workers):
    """Requests go out in rounds until both workers have served some (the kernel may hand a
    loaded machine's first round to one worker); /metrics must then count every one."""
    base, multiproc_dir = gunicorn_two_workers
    sent = 0
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(max_workers=8) as pool:
        while True:
            list(pool.map(_get, [base + "/healthz"] * REQUESTS))
            sent += REQUESTS
            served = _healthz_served_per_worker(multiproc_dir)
            if sum(count > 0 for count in served) >= 2 or time.monotonic() > deadline:
                break

    # A scrape also probes the replicas and the quorum nodes: slower than a health check when
    # a standby of the shared cluster is still coming back from an earlier test.
    text = _get(base + "/metrics", timeout_s=60).decode()

    assert sum(count > 0 for count in served) >= 2
    assert f"{HEALTHZ_COUNTER} {float(sent)}" in text
