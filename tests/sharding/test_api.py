"""The HTTP interface: counters, events, stats; bad input is a 400 problem document."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from sharding.hotkeys import Observation
from sharding.spreading import key_spread
from tests.factories import UserFactory
from tests.sharding.conftest import ALL_DATABASES
from tests.sharding.factories import EventInputFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


@pytest.fixture
def client(shards) -> APIClient:
    api = APIClient()
    api.force_authenticate(UserFactory())
    return api


def test_increments_then_a_read_return_the_sum_with_the_home_shard(client):
    for by in (5, 3, -2):
        response = client.post(
            "/api/sharding/counters/likes:42/increment", {"by": by}, format="json"
        )
        assert response.status_code == 200
        assert response.json()["slot"] == 0

    body = client.get("/api/sharding/counters/likes:42").json()

    assert (body["value"], body["pos"], body["neg"], body["hot"]) == (6, 8, 2, False)
    assert [slot["shard"] for slot in body["slots"]] == [body["home"]]


def test_a_hot_counter_shows_its_slots_on_four_shards(client):
    key_spread(
        key="celebrity", observation=Observation(1e3, 0.5, over_since=time.time(), hot=False)
    )
    for _ in range(20):
        client.post("/api/sharding/counters/celebrity/increment", {"by": 1}, format="json")

    body = client.get("/api/sharding/counters/celebrity?fresh=true").json()

    assert body["value"] == 20
    assert body["hot"] is True
    assert len({slot["shard"] for slot in body["slots"]}) == 4


@pytest.mark.parametrize(
    "key", ["%D0%B0lice", "x" * 129, "a%20b", "-x"], ids=["confusable", "long", "space", "dash"]
)
def test_a_bad_key_is_a_400_with_a_stable_code(client, key):
    response = client.post(f"/api/sharding/counters/{key}/increment", {"by": 1}, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "shard_key_invalid"


@pytest.mark.parametrize("by", [0, "many", "5", 2.0, True, 10**12])
def test_a_bad_increment_is_a_400_validation_error(client, by):
    response = client.post("/api/sharding/counters/k/increment", {"by": by}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "by" in response.json()["errors"]


@pytest.mark.parametrize("key", [0, 42, True, ["user:7"]])
def test_an_event_key_that_is_not_a_string_is_a_400(client, key):
    body = {**EventInputFactory(), "key": key}

    response = client.post("/api/sharding/events/", body, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert "key" in response.json()["errors"]


def test_an_event_posted_is_listed_by_key_and_by_range(client):
    body = EventInputFactory(key="user:7", ts="2026-01-01T00:00:10Z")
    created = client.post("/api/sharding/events/", body, format="json")

    by_key = client.get("/api/sharding/events/?key=user:7").json()
    by_range = client.get(
        "/api/sharding/events/?since=2026-01-01T00:00:00Z&until=2026-01-01T00:01:00Z"
    ).json()

    assert created.status_code == 201
    assert [item["id"] for item in by_key["results"]] == [created.json()["id"]]
    assert [item["id"] for item in by_range["results"]] == [created.json()["id"]]
    assert by_range["partial"] is False
    assert set(by_range["shards"].values()) == {"ok"}
    assert (by_range["next"], by_range["previous"]) == (None, None)


def test_a_range_query_without_bounds_or_with_a_forged_cursor_is_a_400(client):
    missing = client.get("/api/sharding/events/")
    forged = client.get(
        "/api/sharding/events/?since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z&cursor=abc"
    )

    assert (missing.status_code, missing.json()["code"]) == (400, "validation_error")
    assert (forged.status_code, forged.json()["code"]) == (400, "shard_cursor_invalid")


@pytest.mark.parametrize(
    "path",
    [
        "/api/sharding/counters/likes:42?fresh=",
        "/api/sharding/counters/likes:42?fresh=maybe",
        "/api/sharding/events/?since=&until=2026-01-02T00:00:00Z",
        "/api/sharding/events/?since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z&limit=",
    ],
)
def test_an_empty_or_malformed_query_parameter_is_a_400_not_taken_for_an_absent_one(client, path):
    response = client.get(path)

    assert (response.status_code, response.json()["code"]) == (400, "validation_error")


def test_stats_show_every_shard_the_imbalance_and_the_hot_keys(client):
    key_spread(key="star", observation=Observation(1e3, 0.5, over_since=time.time(), hot=False))
    for number in range(40):
        client.post(f"/api/sharding/counters/k{number}/increment", {"by": 1}, format="json")

    body = client.get("/api/sharding/stats/").json()

    assert set(body["shards"]) == {"shard_0", "shard_1", "shard_2", "shard_3"}
    assert sum(shard["operations_total"] for shard in body["shards"].values()) == 40
    assert sum(shard["counter_slots"] for shard in body["shards"].values()) == 40 + 3
    assert sum(shard["buckets"] for shard in body["shards"].values()) == 1024
    assert body["imbalance"]["operations_total"] >= 1.0
    assert body["hot_keys"][0]["key"] == "star"
    assert len(body["hot_keys"][0]["slots"]) == 4


def test_the_heat_map_counts_operations_by_serving_shard_and_bucket_range(client):
    from sharding.hotkeys import HEAT_RANGES, bucket_range_of
    from sharding.placement import bucket_map_current

    keys = [f"heat{number}" for number in range(30)]
    for key in keys:
        client.post(f"/api/sharding/counters/{key}/increment", {"by": 1}, format="json")
    expected: dict[tuple[str, int], int] = {}
    for key in keys:
        cell = (bucket_map_current().shard_for(key), bucket_range_of(key))
        expected[cell] = expected.get(cell, 0) + 1

    heat = client.get("/api/sharding/stats/").json()["heat"]

    counted = {
        (alias, index): total
        for alias, row in heat["shards"].items()
        for index, total in enumerate(row["operations_total"])
        if total
    }
    assert counted == expected
    assert len(heat["ranges"]) == HEAT_RANGES
    assert (heat["ranges"][0]["first_bucket"], heat["ranges"][-1]["last_bucket"]) == (0, 1023)


def test_a_hot_keys_bucket_range_is_busy_on_every_shard_holding_a_slot(client):
    from sharding.hotkeys import bucket_range_of

    key_spread(key="idol", observation=Observation(1e3, 0.5, over_since=time.time(), hot=False))
    for _ in range(80):  # a slot is drawn at random: one left unused has odds of 4e-10
        client.post("/api/sharding/counters/idol/increment", {"by": 1}, format="json")

    heat = client.get("/api/sharding/stats/").json()["heat"]

    busy = {
        alias
        for alias, row in heat["shards"].items()
        if row["operations_total"][bucket_range_of("idol")] > 0
    }
    assert busy == {"shard_0", "shard_1", "shard_2", "shard_3"}


def test_an_anonymous_caller_is_refused(shards):
    response = APIClient().get("/api/sharding/stats/")

    assert response.status_code in {401, 403}


def test_the_admin_shows_the_bucket_map_and_hot_keys_read_only(shards):
    from django.test import Client

    from sharding.placement import bucket_map_current
    from tests.factories import StaffFactory

    bucket_map_current()
    key_spread(key="star", observation=Observation(1e3, 0.5, over_since=time.time(), hot=False))
    browser = Client()
    browser.force_login(StaffFactory(is_superuser=True))

    bucket_maps = browser.get("/admin/sharding_control/bucketmap/")
    hot_keys = browser.get("/admin/sharding_control/hotkeyepisode/")
    add = browser.get("/admin/sharding_control/bucketmap/add/")

    assert bucket_maps.status_code == 200
    assert b"shard_0: 256" in bucket_maps.content
    assert hot_keys.status_code == 200
    assert b"star" in hot_keys.content
    assert add.status_code == 403


def _sample(metric, name: str, **labels) -> float:
    for family in metric.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_metrics_expose_per_shard_operations_imbalance_and_hot_keys(client):
    from sharding.collector import ShardingCollector
    from sharding.metrics import hot_detect_seconds, operations_total

    detected_before = _sample(hot_detect_seconds, "statelab_sharding_hot_detect_seconds_count")
    key_spread(key="star", observation=Observation(1e3, 0.5, over_since=time.time(), hot=False))
    shard = client.post("/api/sharding/counters/k1/increment", {"by": 1}, format="json").json()[
        "shard"
    ]

    families = {family.name: family for family in ShardingCollector().collect()}
    served = _sample(
        operations_total,
        "statelab_sharding_operations_total",
        shard=shard,
        operation="counter_increment",
    )

    assert served >= 1
    assert (
        _sample(hot_detect_seconds, "statelab_sharding_hot_detect_seconds_count")
        == detected_before + 1
    )
    assert families["statelab_sharding_hot_keys"].samples[0].value == 1.0
    assert families["statelab_sharding_imbalance"].samples[0].value >= 1.0
    rated = {sample.labels["shard"] for sample in families["statelab_sharding_shard_rate"].samples}
    assert rated == {shard}
    slots = {s.labels["key"]: s.value for s in families["statelab_sharding_hot_key_slots"].samples}
    assert slots == {"star": 4.0}
    stored = {
        (sample.labels["shard"], sample.labels["kind"]): sample.value
        for sample in families["statelab_sharding_rows"].samples
    }
    assert stored[(shard, "counter_slots")] >= 1
