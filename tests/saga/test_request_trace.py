"""One transfer followed through the logs by its request id: a real gunicorn and a real Celery
worker (with its beat) log JSON lines; the id given in X-Request-ID is on the web's access line
and on the line of every saga step the worker ran, whoever published the step's message (the
request or the task right after commit, or the sweep later)."""

import json
from pathlib import Path

import pytest
import requests
from rest_framework.authtoken.models import Token

from contracts.saga import AccountCredited, AccountDebited, CreditAccount, DebitAccount
from ledger.models import Transfer
from ledger.services import COMMAND_NOTIFY
from tests.factories import UserFactory
from tests.lab.browser import web_server
from tests.saga.conftest import ALL_DATABASES, broker_purge, deposit, wait_until
from tests.saga.factories import AccountFactory
from tests.workers import celery_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)]

SAGA_STEPS = {
    DebitAccount.name,
    AccountDebited.name,
    CreditAccount.name,
    AccountCredited.name,
    COMMAND_NOTIFY,
}


def _json_lines(path: Path) -> list[dict]:
    lines = []
    for text in path.read_text(errors="replace").splitlines():
        if text.startswith("{"):
            lines.append(json.loads(text))
    return lines


def _lines_mentioning(path: Path, needle: str) -> list[str]:
    return [text for text in path.read_text(errors="replace").splitlines() if needle in text]


@pytest.fixture(params=["true", "false"], ids=["published-on-commit", "published-by-the-sweep"])
def service(request, tmp_path):
    """gunicorn, and a worker with its beat, logging JSON; with ``false`` every outbox row is
    left to the sweep (beat's ``core.outbox_sweep``) instead of being published on commit."""
    environment = {
        "STATELAB_LOG_FORMAT": "json",
        "STATELAB_OUTBOX_PUBLISH_ON_COMMIT": request.param,
    }
    broker_purge()
    with (
        celery_worker(tmp_path, name="trace", beat=True, environment=environment) as worker,
        web_server(tmp_path, **environment) as web,
    ):
        yield web, worker


def test_one_grep_finds_the_web_line_and_every_saga_step_of_a_transfer(service):
    web, worker = service
    alice = UserFactory()
    source, destination = AccountFactory(owner_id=alice.pk), AccountFactory()
    deposit(source, "10.00")
    request_id = "trace-transfer-0001"

    response = requests.post(
        f"{web.base_url}/api/transfers/",
        json={
            "source": source.id,
            "destination": destination.id,
            "amount": "4.00",
            "currency": "EUR",
        },
        headers={
            "Authorization": f"Token {Token.objects.create(user=alice).key}",
            "Idempotency-Key": "trace-1",
            "X-Request-ID": request_id,
        },
        timeout=30,
    )
    assert response.status_code == 202, response.text
    assert response.headers["X-Request-ID"] == request_id

    def steps_logged() -> set[str]:
        return {
            line["task"]
            for line in _json_lines(worker.log_path)
            if line.get("request_id") == request_id and "task" in line
        }

    assert wait_until(lambda: steps_logged() >= SAGA_STEPS, timeout_s=60), (
        steps_logged(),
        worker.log_tail(),
    )
    transfer = Transfer.objects.using("ledger").get(id=response.json()["id"])
    assert transfer.state == Transfer.State.COMPLETED
    web_lines = [
        line
        for line in _json_lines(web.log_path)
        if line.get("request_id") == request_id and line["logger"] == "gunicorn.access"
    ]
    assert [(line["method"], line["path"], line["status"]) for line in web_lines] == [
        ("POST", "/api/transfers/", 202)
    ]
    # Every line naming the id, in either log, is a JSON line that carries it as its field.
    for path in (web.log_path, worker.log_path):
        for text in _lines_mentioning(path, request_id):
            assert json.loads(text)["request_id"] == request_id
