"""The dashboard and the alert rules that ship (deploy/grafana, deploy/alerts.yml) load, and
every metric they name is one the service exposes at ``/metrics``."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from audit.metrics import ReconciliationCollector
from ledger.metrics import TransfersByStateCollector
from ledger.models import Transfer

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "statelab.json"
ALERTS = ROOT / "deploy" / "alerts.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

# What an operator must hear about (issue 18): the alert, and a metric its expression reads.
REQUIRED_ALERTS = {
    "StatelabOutboxOldestAge": "statelab_outbox_oldest_age_seconds",
    "StatelabSagasStuck": "statelab_sagas_stuck",
    "StatelabReconciliationNotOk": "statelab_reconciliation_ok",
    "StatelabReplicaLag": "statelab_replica_staleness_seconds",
    "StatelabRedisUnavailable": "statelab_redis_unavailable_total",
    "StatelabHotKeySpreading": "statelab_sharding_hot_keys",
    "StatelabErrorRate": "django_http_responses_total_by_status_total",
}
PATTERN_ROWS = ("Service", "Transfer saga", "Session consistency", "Sharding")
METRIC_NAME = re.compile(r"\b(?:statelab|django)_[a-z0-9_]+\b")
SAMPLE_SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def rules() -> list[dict]:
    return [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]


def dashboard_expressions() -> list[str]:
    return [
        target["expr"]
        for panel in dashboard()["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def named_metrics(expressions: list[str]) -> set[str]:
    return {name for expression in expressions for name in METRIC_NAME.findall(expression)}


@pytest.fixture(scope="module")
def exposed(django_db_blocker) -> set[str]:
    """Every name a query may use: families and their samples (``_total``, ``_bucket``, ...)."""
    with django_db_blocker.unblock():
        response = APIClient().get("/metrics")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names |= {family.name + suffix for suffix in SAMPLE_SUFFIXES}
        names |= {sample.name for sample in family.samples}
    return names


def test_the_dashboard_has_a_row_per_pattern_and_queries_the_provisioned_prometheus():
    panels = dashboard()["panels"]
    rows = [panel["title"] for panel in panels if panel["type"] == "row"]
    datasource = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
    used = {panel["datasource"]["uid"] for panel in panels if panel["type"] != "row"}

    assert [any(row.startswith(pattern) for row in rows) for pattern in PATTERN_ROWS] == [
        True
    ] * len(PATTERN_ROWS)
    assert used == {datasource["uid"]}
    assert datasource["url"] == "http://prometheus:9090"


def test_every_rule_is_complete_and_prometheus_loads_the_file():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())

    assert config["rule_files"] == [ALERTS.name]
    for rule in rules():
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule
        assert rule["labels"]["severity"] in {"page", "ticket", "info"}
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize(("alert", "metric"), sorted(REQUIRED_ALERTS.items()))
def test_the_rules_alert_on_what_an_operator_must_hear_about(alert, metric):
    by_name = {rule["alert"]: rule for rule in rules()}

    assert metric in named_metrics([by_name[alert]["expr"]])


@pytest.mark.django_db(databases="__all__")
def test_every_metric_the_dashboard_and_the_rules_name_is_exposed(exposed):
    named = named_metrics(dashboard_expressions() + [rule["expr"] for rule in rules()])

    assert len(named) > 30
    assert named - exposed == set()


def _gauge(collector, name: str) -> dict[tuple, float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in collector.collect()
        for sample in family.samples
        if sample.name == name
    }


def _transfer(*states: str, updated_at=None) -> Transfer:
    """A transfer taken through ``states`` (the database guards every transition)."""
    transfer = Transfer.objects.using("ledger").create(
        owner_id=1, amount=100, currency="EUR", source_account_id=1, destination_account_id=2
    )
    rows = Transfer.objects.using("ledger").filter(pk=transfer.pk)
    for state in states:
        rows.update(state=state)
    rows.update(updated_at=updated_at or timezone.now())
    return transfer


@pytest.mark.django_db(databases="__all__")
def test_a_transfer_waiting_past_the_watchdog_bound_counts_as_stuck(settings):
    long_ago = timezone.now() - timedelta(seconds=settings.SAGA_STUCK_AFTER_S + 5)
    _transfer("debited", updated_at=long_ago)
    _transfer()
    _transfer("failed", updated_at=long_ago)

    assert _gauge(TransfersByStateCollector(), "statelab_sagas_stuck") == {(): 1.0}


@pytest.mark.django_db(databases="__all__")
def test_reconciliation_gauges_report_each_check():
    verdicts = _gauge(ReconciliationCollector(), "statelab_reconciliation_ok")

    assert verdicts == {
        (("check", check),): 1.0
        for check in (
            "money_conserved",
            "transfer_operations",
            "journal_matches_balances",
            "operations_explain_balances",
            "all",
        )
    }


@pytest.mark.django_db(databases="__all__")
def test_a_completed_transfer_without_its_operations_turns_reconciliation_to_zero():
    _transfer("debited", "credited", "completed")

    verdicts = _gauge(ReconciliationCollector(), "statelab_reconciliation_ok")

    assert verdicts[(("check", "transfer_operations"),)] == 0.0
    assert verdicts[(("check", "all"),)] == 0.0
