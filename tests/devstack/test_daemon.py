"""The generic long-running process (Daemon), with a tiny Python listener as the program."""

import os
import pwd
from pathlib import Path

import pytest

from devstack.accounts import FALLBACK_USER, SERVICE_USER
from devstack.errors import StackError
from devstack.process import pid_alive, port_open, wait_pid_gone

pytestmark = pytest.mark.stack

IGNORES_SIGTERM = """
import signal, socket, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    time.sleep(1)
"""
FAILS_AT_ONCE = """
import sys
print("listener: bad configuration, giving up")
sys.exit(3)
"""
NEVER_LISTENS = """
import time
time.sleep(3600)
"""


def test_up_starts_the_program_and_status_reports_it_running(make_listener):
    listener = make_listener()

    listener.up()
    status = listener.status()

    assert status == {"given": False, "running": True, "pid": status["pid"], "port": listener.port}
    assert pid_alive(status["pid"])
    assert port_open(listener.port)


def test_the_program_runs_in_its_own_session(make_listener):
    listener = make_listener()

    listener.up()

    assert os.getsid(listener.pid()) == listener.pid()


def test_a_second_up_reuses_the_running_program(make_listener):
    listener = make_listener()
    listener.up()
    first = listener.pid()

    listener.up()

    assert listener.pid() == first


def test_down_stops_the_program_and_removes_its_pid_file(make_listener):
    listener = make_listener()
    listener.up()
    pid = listener.pid()

    listener.down()

    assert not pid_alive(pid)
    assert listener.status()["running"] is False
    assert not listener.pid_path.exists()


def test_down_kills_a_program_that_ignores_sigterm(make_listener):
    listener = make_listener(code=IGNORES_SIGTERM, stop_timeout_s=0.5)
    listener.up()
    pid = listener.pid()

    listener.down()

    assert not pid_alive(pid)


def test_up_after_a_crash_starts_the_program_again(make_listener):
    listener = make_listener()
    listener.up()
    crashed = listener.pid()
    os.kill(crashed, 9)
    assert wait_pid_gone(crashed, timeout=10)  # the crash has happened before the next up

    listener.up()

    assert listener.pid() not in {None, crashed}
    assert port_open(listener.port)


def test_a_program_that_exits_at_start_fails_with_its_command_and_log(make_listener):
    listener = make_listener(code=FAILS_AT_ONCE)

    with pytest.raises(StackError) as failure:
        listener.up()

    message = str(failure.value)
    assert message.startswith(f"{listener.name}: exited with status 3")
    assert "command: " in message
    assert "bad configuration, giving up" in message


def test_a_program_that_never_gets_ready_is_stopped_and_reported(make_listener):
    listener = make_listener(code=NEVER_LISTENS, start_timeout_s=1)

    with pytest.raises(StackError, match="does not accept connections on port") as failure:
        listener.up()

    assert failure.value.component == listener.name
    assert listener.pid() is None


def test_up_refuses_a_port_another_process_holds(make_listener):
    listener = make_listener()
    squatter = make_listener(name="squatter")
    squatter.port = listener.port
    squatter.up()

    with pytest.raises(StackError, match=f"port 127.0.0.1:{listener.port} is already taken"):
        listener.up()


def test_logs_returns_the_end_of_the_programs_output(make_listener):
    listener = make_listener(code=FAILS_AT_ONCE)
    with pytest.raises(StackError):
        listener.up()

    assert listener.logs(1) == "listener: bad configuration, giving up"


def test_status_of_a_component_given_by_its_url_variable_says_so(make_listener, monkeypatch):
    listener = make_listener(given_by="STATELAB_TEST_LISTENER_URL")
    listener.workspace.honor_given_urls = True
    monkeypatch.setenv("STATELAB_TEST_LISTENER_URL", "tcp://elsewhere:1")

    listener.up()

    assert listener.status() == {
        "given": True,
        "running": False,
        "pid": None,
        "port": listener.port,
    }


def test_under_root_the_program_runs_as_the_service_account(make_listener):
    listener = make_listener()

    listener.up()
    owner = pwd.getpwuid(Path(f"/proc/{listener.pid()}").stat().st_uid).pw_name

    if os.geteuid() == 0:
        assert owner in {SERVICE_USER, FALLBACK_USER}
    else:
        assert owner == pwd.getpwuid(os.geteuid()).pw_name
