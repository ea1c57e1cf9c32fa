"""Placement: stable hash -> bucket -> shard through a versioned map."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st

from sharding.counters import counter_get, counter_increment
from sharding.errors import ShardKeyInvalid
from sharding.moves import bucket_move
from sharding.placement import (
    KEY_PATTERN,
    ShardMap,
    bucket_map_current,
    bucket_of,
    initial_assignment,
    key_validate,
    rebalance_plan,
    shard_for,
)
from tests.sharding.conftest import ALL_DATABASES
from tests.workers import ROOT, worker_environment

KEYS = [f"user:{number}" for number in range(300)] + ["celebrity", "a", "Z-9_x.y@z:1"]

PLACEMENT_SCRIPT = """
import json, sys, django
django.setup()
from sharding.placement import bucket_map_current, bucket_of
keys = json.loads(sys.stdin.read())
bucket_map = bucket_map_current()
print(json.dumps({"version": bucket_map.version,
                  "placement": {k: [bucket_of(k), bucket_map.shard_for(k)] for k in keys}}))
"""

keys = st.from_regex(KEY_PATTERN, fullmatch=True).filter(lambda key: len(key) <= 128)


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_another_process_places_every_key_on_the_same_bucket_and_shard(shards):
    bucket_map = bucket_map_current()
    result = subprocess.run(
        [sys.executable, "-c", PLACEMENT_SCRIPT],
        input=json.dumps(KEYS),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=worker_environment(
            PYTHONHASHSEED="12345", SHARDING_REDIS_PREFIX=settings.SHARDING["prefix"]
        ),
        timeout=60,
        check=True,
    )
    other = json.loads(result.stdout.strip().splitlines()[-1])
    assert other["version"] == bucket_map.version
    assert other["placement"] == {key: [bucket_of(key), bucket_map.shard_for(key)] for key in KEYS}


@given(key=keys, version=st.integers(min_value=1, max_value=10))
def test_placement_is_a_pure_function_of_key_and_map(key, version):
    assignment = tuple(initial_assignment(["shard_0", "shard_1", "shard_2", "shard_3"], 1024))
    first = ShardMap(version=version, assignment=assignment)
    again = ShardMap(version=version, assignment=tuple(assignment))
    assert 0 <= bucket_of(key, 1024) < 1024
    assert shard_for(key, first) == shard_for(key, again) == assignment[bucket_of(key, 1024)]


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_moved_buckets_keys_resolve_to_the_new_shard_with_their_data(shards):
    key = "user:moved"
    counter_increment(key=key, by=7)
    before = bucket_map_current()
    source = before.shard_for(key)
    target = next(alias for alias in settings.SHARD_ALIASES if alias != source)

    move = bucket_move(bucket=bucket_of(key), target=target)

    after = bucket_map_current(force=True)
    assert after.version == before.version + 1
    assert shard_for(key, after) == target
    assert shard_for(key, before) == source
    assert move.state == "done"
    assert counter_get(key=key, use_cache=False).value == 7
    assert counter_get(key=key, use_cache=False).home == target


def test_adding_a_shard_moves_only_the_buckets_it_takes():
    three = initial_assignment(["shard_0", "shard_1", "shard_2"], 1024)

    plan = rebalance_plan(three, ["shard_0", "shard_1", "shard_2", "shard_3"])

    assert set(plan.values()) == {"shard_3"}
    assert len(plan) == 256
    after = [plan.get(bucket, owner) for bucket, owner in enumerate(three)]
    assert {alias: after.count(alias) for alias in set(after)} == {
        "shard_0": 256,
        "shard_1": 256,
        "shard_2": 256,
        "shard_3": 256,
    }


@pytest.mark.parametrize(
    "key",
    [
        "",
        "x" * 129,
        "\u0430lice",
        "alice bob",
        "-leading-dash",
        "emoji\U0001f600",
        "a/b",
        "\uff21BC",
    ],
    ids=["empty", "too-long", "cyrillic-a", "space", "leading-dash", "emoji", "slash", "fullwidth"],
)
def test_a_key_outside_the_charset_or_length_is_refused(key):
    with pytest.raises(ShardKeyInvalid):
        key_validate(key)
