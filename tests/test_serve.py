"""`make run` and `make stop` as a user expects: a run refuses at once when its port is taken
or an earlier run still goes on; stopping stops web, worker and beat even when the run was
left in the background (bin/serve, bin/stop: the commands the Makefile runs)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def _env(stack_dir: Path, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    return {**env, "STATELAB_STACK_DIR": str(stack_dir), "STATELAB_WEB_PORT": str(port)}


def _descendants(pid: int) -> set[int]:
    """``pid``'s processes and all their children, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo += children.get(current, [])
    return found


def _running(pids: set[int]) -> set[int]:
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def _preflight(stack_dir: Path, port: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bin/serve", "--preflight"],
        cwd=ROOT,
        env=_env(stack_dir, port),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_run_refuses_at_once_when_its_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = _preflight(tmp_path, port)

    assert result.returncode != 0
    assert f"port {port}" in result.stdout
    assert "WEB_PORT=" in result.stdout


@pytest.mark.stack
def test_stop_stops_web_worker_and_beat_of_a_run_left_in_the_background(tmp_path):
    port = free_port()
    serve = subprocess.Popen(
        ["bin/serve"],
        cwd=ROOT,
        env=_env(tmp_path, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert serve.stdout is not None
        for line in serve.stdout:
            if "statelab is running" in line or "failed" in line:
                break
        assert "statelab is running" in line
        started = _descendants(serve.pid)
        second = _preflight(tmp_path, port)

        stopped = subprocess.run(
            ["bin/stop"], cwd=ROOT, env=_env(tmp_path, port), timeout=60, check=False
        )
        serve.wait(timeout=30)
        time.sleep(0.5)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, 9)
            serve.wait()

    assert len(started) >= 5  # the script, gunicorn and its workers, the worker, beat
    assert (second.returncode, "already running" in second.stdout) == (1, True)
    assert stopped.returncode == 0
    assert _running(started) == set()
    assert _preflight(tmp_path, port).returncode == 0
