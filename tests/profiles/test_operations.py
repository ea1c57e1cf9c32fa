"""The replica delay switch, the metrics, and the write position travelling into Celery."""

import time

import pytest
from django.conf import settings
from django.db import connections

from config.celery import app
from profiles.models import ProfileChange
from tests.factories import StaffFactory
from tests.profiles.conftest import ROUTED_DATABASES, replicas_caught_up
from tests.profiles.factories import ProfileUserFactory, token_client
from tests.workers import celery_worker

pytestmark = pytest.mark.django_db(databases=ROUTED_DATABASES, transaction=True)
REPLICA = settings.REPLICA_ALIASES[0]


def _replica_apply_delay() -> str:
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SHOW recovery_min_apply_delay")
        return cursor.fetchone()[0]


@pytest.fixture
def staff_client():
    client = token_client(StaffFactory())
    yield client
    client.patch("/api/faults/", {"replica_delay_ms": 0}, format="json")
    replicas_caught_up(timeout_s=30)


@pytest.mark.replication
def test_the_replica_delay_switch_changes_the_running_replica(staff_client):
    response = staff_client.patch("/api/faults/", {"replica_delay_ms": 300}, format="json")

    listed = {fault["name"]: fault["value"] for fault in response.json()["faults"]}
    assert response.status_code == 200
    assert listed["replica_delay_ms"] == 300
    assert _replica_apply_delay() == "300ms"


def test_the_replica_delay_switch_refuses_a_negative_delay(staff_client):
    response = staff_client.patch("/api/faults/", {"replica_delay_ms": -5}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "fault_value_invalid"


@pytest.mark.replication
@pytest.mark.django_db(databases="__all__", transaction=True)  # /metrics reads every app
def test_metrics_count_reads_by_target_and_reason_and_cache_results():
    client = token_client(ProfileUserFactory())
    replicas_caught_up()
    client.get("/api/profiles/me/", HTTP_X_CONSISTENCY="strong")
    client.get("/api/profiles/me/", HTTP_CACHE_CONTROL="no-cache")

    body = client.get("/metrics").content.decode()

    assert 'statelab_profile_reads_total{reason="strong",target="primary"}' in body
    assert 'statelab_profile_reads_total{reason="caught_up",target="replica"}' in body
    assert 'statelab_profile_cache_total{result="bypass"}' in body
    assert f'statelab_replica_in_rotation{{replica="{REPLICA}"}} 1.0' in body


@pytest.mark.worker
@pytest.mark.replication
def test_a_task_sent_by_a_write_reads_that_write_despite_replica_lag(tmp_path, replica_delay):
    user = ProfileUserFactory()
    client = token_client(user)
    replicas_caught_up()
    app.control.purge()  # change-feed tasks other tests sent (no worker ran for them)
    with celery_worker(tmp_path, concurrency=1, name="profiles"):
        replica_delay(1500)
        written = client.patch("/api/profiles/me/", {"display_name": "Fresh"}, format="json")
        version = written.json()["version"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            change = ProfileChange.objects.filter(profile_id=user.pk).first()
            if change is not None:
                break
            time.sleep(0.05)

    assert change is not None
    assert (change.version, change.display_name) == (version, "Fresh")
    assert change.read_from == "primary"
