"""The Redis component: real redis-server processes in a temp dir, on free ports."""

from collections.abc import Iterator

import pytest
import redis as redis_client

from devstack.components import Redis
from devstack.errors import StackError
from devstack.process import pid_alive, port_open
from devstack.workspace import Workspace
from tests.devstack.conftest import free_ports

pytestmark = pytest.mark.stack


@pytest.fixture
def redis(workspace: Workspace) -> Iterator[Redis]:
    component = Redis(workspace, port=free_ports(1)[0])
    try:
        yield component
    finally:
        component.down()


def _client(component: Redis) -> redis_client.Redis:
    return redis_client.Redis(host="127.0.0.1", port=component.port, socket_timeout=2)


def test_up_starts_a_redis_that_stores_values(redis):
    redis.up()

    _client(redis).set("greeting", "hello")

    assert _client(redis).get("greeting") == b"hello"


def test_status_reports_the_running_redis(redis):
    redis.up()

    status = redis.status()

    assert status == {"given": False, "running": True, "pid": redis.pid(), "port": redis.port}


def test_a_second_up_reuses_the_running_redis_and_its_data(redis):
    redis.up()
    _client(redis).set("kept", "yes")
    first = redis.pid()

    redis.up()

    assert redis.pid() == first
    assert _client(redis).get("kept") == b"yes"


def test_down_stops_redis_and_frees_its_port(redis):
    redis.up()
    pid = redis.pid()

    redis.down()

    assert not pid_alive(pid)
    assert not port_open(redis.port)
    assert redis.status()["running"] is False


def test_after_down_and_up_redis_is_empty(redis):
    redis.up()
    _client(redis).set("lost", "on restart")

    redis.down()
    redis.up()

    assert _client(redis).get("lost") is None


def test_logs_show_the_end_of_the_redis_log(redis):
    redis.up()

    assert "Ready to accept connections" in redis.logs(5)


def test_up_names_the_port_variable_when_the_port_is_taken(redis, workspace):
    squatter = Redis(workspace, port=redis.port, name="squatter")
    squatter.up()
    try:
        with pytest.raises(StackError, match="STATELAB_REDIS_PORT") as failure:
            redis.up()
    finally:
        squatter.down()

    assert failure.value.component == "redis"


def test_with_redis_url_given_up_starts_nothing(redis, monkeypatch):
    redis.workspace.honor_given_urls = True
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/0")

    redis.up()

    assert redis.status()["given"] is True
    assert not port_open(redis.port)
