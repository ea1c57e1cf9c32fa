"""The test worker is real: a separate process that takes tasks from the Redis broker and
writes to the test databases."""

import time

import pytest
from django.db import connections

from config.celery import app
from tests.workers import celery_worker


@app.task(name="tests.record_worker_probe")
def record_worker_probe(marker: str) -> None:
    with connections["ledger"].cursor() as cursor:
        cursor.execute("INSERT INTO worker_probe (marker) VALUES (%s)", [marker])


@pytest.fixture
def probe_table():
    with connections["ledger"].cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS worker_probe (marker text)")
    yield
    with connections["ledger"].cursor() as cursor:
        cursor.execute("DROP TABLE worker_probe")


def _probe_markers() -> list[str]:
    with connections["ledger"].cursor() as cursor:
        cursor.execute("SELECT marker FROM worker_probe")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.worker
@pytest.mark.django_db(databases=["ledger"], transaction=True)
def test_a_worker_process_runs_a_task_against_the_test_database(tmp_path, probe_table):
    with celery_worker(tmp_path, include=(__name__,)) as worker:
        record_worker_probe.delay("from-the-broker")
        deadline = time.monotonic() + 30
        while not _probe_markers() and time.monotonic() < deadline:
            time.sleep(0.1)

        assert worker.alive()
    assert _probe_markers() == ["from-the-broker"]
