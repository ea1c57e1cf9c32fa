"""The request id (core.request_id): taken from X-Request-ID when acceptable, else made; echoed;
recorded by the outbox rows a request writes; on the lines the request logs."""

import json
import logging

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from core.logs import formatter_config
from core.outbox import outbox_put
from core.request_id import (
    MAX_LENGTH,
    request_id_bound,
    request_id_current,
    request_id_parse,
)
from ledger.models import LedgerOutbox, Transfer
from ledger.services import saga_redrive


def _echoed(raw: str | None) -> str:
    headers = {} if raw is None else {"HTTP_X_REQUEST_ID": raw}
    return Client().get("/healthz", **headers)["X-Request-ID"]


def test_an_acceptable_request_id_is_echoed():
    assert _echoed("checkout-7f3a:retry.2") == "checkout-7f3a:retry.2"


def test_a_request_without_an_id_gets_a_new_one_each_time():
    first, second = _echoed(None), _echoed(None)

    assert request_id_parse(first) == first
    assert first != second


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "a" * (MAX_LENGTH + 1),
        "two words",
        'quote"inside',
        "new\nline",
        "-starts-with-a-dash",
        "ünïcode",
        "{json}",
    ],
)
def test_an_unacceptable_request_id_is_replaced(raw):
    echoed = _echoed(raw)

    assert echoed != raw
    assert request_id_parse(echoed) == echoed


@given(st.text(max_size=80))
def test_only_short_plain_tokens_are_taken(raw):
    parsed = request_id_parse(raw)

    if parsed is not None:
        assert parsed == raw
        assert len(raw) <= MAX_LENGTH
        assert all(char.isascii() and (char.isalnum() or char in "._:-") for char in raw)


def test_an_error_answer_carries_the_id_too():
    response = Client().get("/no-such-page", HTTP_X_REQUEST_ID="lost-1")

    assert response.status_code == 404
    assert response["X-Request-ID"] == "lost-1"


def test_no_id_is_current_once_the_request_is_over():
    Client().get("/healthz", HTTP_X_REQUEST_ID="over-1")

    assert request_id_current() is None


def _rendered(record: logging.LogRecord, log_format: str) -> str:
    config = formatter_config(log_format)
    factory = config.pop("()")
    return factory(**config).format(record)


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("statelab.test", logging.INFO, __file__, 1, message, (), None)


def test_a_json_line_carries_the_current_request_id():
    with request_id_bound("trace-1"):
        line = _rendered(_record("step done"), "json")

    assert json.loads(line) | {"timestamp": None} == {
        "event": "step done",
        "level": "info",
        "logger": "statelab.test",
        "request_id": "trace-1",
        "timestamp": None,
    }


def test_a_console_line_is_one_readable_line_with_the_request_id():
    with request_id_bound("trace-2"):
        line = _rendered(_record("step done"), "console")

    assert "\n" not in line
    assert "step done" in line
    assert "request_id=trace-2" in line


def test_a_line_logged_outside_any_request_has_no_request_id():
    assert "request_id" not in json.loads(_rendered(_record("idle"), "json"))


def test_an_invalid_id_never_becomes_current():
    with request_id_bound("bad id\n"):
        assert request_id_current() is None


@pytest.mark.django_db(databases=["ledger"])
def test_an_outbox_row_records_the_request_it_was_written_in(settings):
    settings.OUTBOX_PUBLISH_ON_COMMIT = False

    with request_id_bound("writer-1"), transaction.atomic(using="ledger"):
        row = outbox_put(using="ledger", task="ledger.notify", kwargs={"transfer_id": "x"})

    assert LedgerOutbox.objects.using("ledger").get(id=row.id).request_id == "writer-1"


@pytest.mark.django_db(databases=["ledger"])
def test_a_redrive_is_sent_under_the_request_id_that_created_the_transfer(settings):
    settings.OUTBOX_PUBLISH_ON_COMMIT = False
    transfer = Transfer.objects.using("ledger").create(
        owner_id=1,
        source_account_id=1,
        destination_account_id=2,
        amount=100,
        currency="EUR",
        request_id="creator-1",
    )

    with request_id_bound("watchdog-run"):
        assert saga_redrive(transfer_id=transfer.id, actor="watchdog") is True

    assert list(LedgerOutbox.objects.using("ledger").values_list("request_id", flat=True)) == [
        "creator-1"
    ]
