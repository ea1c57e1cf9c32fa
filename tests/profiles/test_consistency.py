"""Read-your-writes and monotonic reads over the real streaming replica (architecture section 4).

Reads here skip the cache (``Cache-Control: no-cache``) so that routing alone is tested; the
cache has its own tests. The replica's apply delay is real (``recovery_min_apply_delay``)."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections, transaction
from django.test import AsyncClient
from rest_framework.authtoken.models import Token

from consistency.context import consistency_context, pin_to_primary
from consistency.levels import EVENTUAL, SESSION, STRONG
from consistency.pool import replica_pool
from consistency.replicas import wait_for_replay, write_position
from consistency.routing import read_decision
from consistency.state import SessionState
from consistency.store import PositionStore
from tests.profiles.conftest import ROUTED_DATABASES, replicas_caught_up
from tests.profiles.factories import ProfileUserFactory, profile_of, token_client
from tests.servers import free_port

pytestmark = [
    pytest.mark.replication,
    pytest.mark.django_db(databases=ROUTED_DATABASES, transaction=True),
]
REPLICA = settings.REPLICA_ALIASES[0]
# Any standby in rotation may serve a replica read: one replica alias per standby.
REPLICAS = set(settings.REPLICA_ALIASES)
NO_CACHE = {"HTTP_CACHE_CONTROL": "no-cache"}
PAIRS = 40


def _write_then_read(client, number: int, consistency: str) -> tuple[int, dict, str]:
    written = client.patch("/api/profiles/me/", {"bio": f"edit {number}"}, format="json")
    read = client.get("/api/profiles/me/", HTTP_X_CONSISTENCY=consistency, **NO_CACHE)
    assert read.status_code == 200
    return written.json()["version"], read.json(), read["X-Served-By"]


def test_session_reads_right_after_writes_are_never_stale(replica_delay):
    client = token_client(ProfileUserFactory())
    replicas_caught_up()
    replica_delay(800)

    outcomes = [_write_then_read(client, number, "session") for number in range(PAIRS)]

    stale = [
        (written, read["version"]) for written, read, _ in outcomes if read["version"] < written
    ]
    assert stale == []
    assert all(read["bio"] == f"edit {n}" for n, (_, read, _) in enumerate(outcomes))


def test_eventual_reads_right_after_writes_are_stale_under_a_delay(replica_delay):
    client = token_client(ProfileUserFactory())
    replicas_caught_up()
    replica_delay(800)

    outcomes = [_write_then_read(client, number, "eventual") for number in range(10)]

    stale = [served for written, read, served in outcomes if read["version"] < written]
    assert len(stale) >= 1
    assert set(stale) <= REPLICAS


def test_a_browser_session_reads_its_own_write_too(replica_delay):
    user = ProfileUserFactory()
    client = token_client(user)
    client.credentials()
    client.force_login(user)
    replicas_caught_up()
    replica_delay(800)

    client.patch("/api/profiles/me/", {"location": "Kyiv"}, format="json")
    read = client.get("/api/profiles/me/", **NO_CACHE)

    assert read.json()["location"] == "Kyiv"
    assert read["X-Served-By"] == "primary"


def test_a_sequence_of_session_reads_never_goes_back_in_version(replica_delay):
    owner, reader = ProfileUserFactory(), ProfileUserFactory()
    owner_client, reader_client = token_client(owner), token_client(reader)
    replicas_caught_up()
    replica_delay(800)
    seen = []

    for number in range(6):
        owner_client.patch("/api/profiles/me/", {"bio": f"v{number}"}, format="json")
        # The cache has the new version at once; the replica will not for 0.8 s.
        for headers in ({}, NO_CACHE, NO_CACHE):
            response = reader_client.get(f"/api/profiles/{owner.pk}/", **headers)
            seen.append(response.json()["version"])

    assert seen == sorted(seen)
    assert seen[-1] == profile_of(owner).version


def test_other_users_profiles_are_read_from_the_replica_once_it_has_caught_up():
    owner, reader = ProfileUserFactory(), ProfileUserFactory()
    reader_client = token_client(reader)
    reader_client.patch("/api/profiles/me/", {"bio": "my own write"}, format="json")
    replicas_caught_up()

    responses = [reader_client.get(f"/api/profiles/{owner.pk}/", **NO_CACHE) for _ in range(5)]

    assert {response["X-Served-By"] for response in responses} <= REPLICAS


def test_reading_ones_own_profile_returns_to_the_replica_when_it_has_caught_up():
    client = token_client(ProfileUserFactory())
    client.patch("/api/profiles/me/", {"bio": "written"}, format="json")
    replicas_caught_up()

    response = client.get("/api/profiles/me/", **NO_CACHE)

    assert response["X-Served-By"] in REPLICAS
    assert response.json()["bio"] == "written"


def test_strong_reads_are_served_by_the_primary():
    client = token_client(ProfileUserFactory())
    replicas_caught_up()

    response = client.get("/api/profiles/me/", HTTP_X_CONSISTENCY="strong")

    assert response["X-Served-By"] == "primary"


def test_a_replica_staler_than_the_bound_leaves_the_rotation_and_comes_back(
    replica_delay, settings
):
    settings.CONSISTENCY_MAX_STALENESS_S = 0.3
    client = token_client(ProfileUserFactory())
    replicas_caught_up()
    replica_delay(1500)
    client.patch("/api/profiles/me/", {"bio": "lagging"}, format="json")
    time.sleep(0.6)

    lagging = client.get("/api/profiles/me/", HTTP_X_CONSISTENCY="eventual", **NO_CACHE)
    replica_delay(0)
    replicas_caught_up()
    recovered = client.get("/api/profiles/me/", HTTP_X_CONSISTENCY="eventual", **NO_CACHE)

    assert lagging["X-Served-By"] == "primary"
    assert recovered["X-Served-By"] in REPLICAS


def _older_than_the_positions_bound() -> None:
    time.sleep(settings.CONSISTENCY_POSITIONS_MAX_AGE_S * 3)
    assert settings.CONSISTENCY_POSITIONS_MAX_AGE_S * 3 < settings.CONSISTENCY_HEALTH_MAX_AGE_S


def test_a_recent_snapshot_showing_the_position_routes_without_a_probe():
    replicas_caught_up()
    replica_pool.states()
    probed_at = replica_pool.probed_at
    _older_than_the_positions_bound()

    with consistency_context(SESSION, state=SessionState()):
        decision = read_decision("profile:someone-else")

    assert (decision.alias in REPLICAS, decision.reason) == (True, "caught_up")
    assert replica_pool.probed_at == probed_at


def test_a_position_newer_than_the_snapshot_is_probed_for():
    replicas_caught_up()
    replica_pool.states()
    ProfileUserFactory()
    written = write_position()
    assert all(wait_for_replay(alias, written.lsn) for alias in REPLICAS)
    _older_than_the_positions_bound()

    with consistency_context(SESSION, state=SessionState(writes={"profile:mine": written})):
        decision = read_decision("profile:mine")

    # Only a new probe can know that the replica has the write: the snapshot predates it.
    assert (decision.alias in REPLICAS, decision.reason) == (True, "caught_up")


def test_pin_to_primary_overrides_the_requested_consistency():
    replicas_caught_up()

    with consistency_context(EVENTUAL):
        routed = read_decision().alias
        with pin_to_primary():
            pinned = read_decision().alias

    assert (routed in REPLICAS, pinned) == (True, "default")


def test_a_replica_that_fails_mid_request_leaves_the_rotation():
    client = token_client(ProfileUserFactory())
    replicas_caught_up()
    assert client.get("/api/profiles/me/", **NO_CACHE)["X-Served-By"] in REPLICAS
    originals = {alias: connections[alias].settings_dict for alias in REPLICAS}
    for alias, original in originals.items():
        connections[alias].close()
        connections[alias].settings_dict = {**original, "PORT": str(free_port())}
    try:
        # The cached positions still say "up": the read fails over and the replica leaves.
        response = client.get("/api/profiles/me/", **NO_CACHE)
        states = replica_pool.states()
    finally:
        for alias, original in originals.items():
            connections[alias].close()
            connections[alias].settings_dict = original

    assert response.status_code == 200
    assert response["X-Served-By"] == "primary"
    assert not any(states[alias].in_rotation for alias in REPLICAS)


def test_concurrent_async_requests_each_keep_their_own_consistency():
    """Through the ASGI handler: the middleware's async path, the sync view in a thread."""
    user = ProfileUserFactory()
    token = Token.objects.create(user=user)
    replicas_caught_up()
    client = AsyncClient()
    levels = ["strong", "eventual"] * 6

    async def get(level: str):
        headers = {"Authorization": f"Token {token.key}", "Cache-Control": "no-cache"}
        return await client.get("/api/profiles/me/", headers={**headers, "X-Consistency": level})

    async def main():
        try:
            return await asyncio.gather(*(get(level) for level in levels))
        finally:
            await sync_to_async(connections.close_all)()

    responses = asyncio.run(main())

    served = [
        (level, response["X-Served-By"]) for level, response in zip(levels, responses, strict=True)
    ]
    assert {by for level, by in served if level == "strong"} == {"primary"}
    assert {by for level, by in served if level == "eventual"} <= REPLICAS


def test_the_consistency_context_is_per_asyncio_task():
    replicas_caught_up()

    async def main():
        barrier = asyncio.Event()

        async def decide(level: str) -> str:
            with consistency_context(level):
                await barrier.wait()
                return (await sync_to_async(read_decision)()).alias

        tasks = [asyncio.create_task(decide(level)) for level in (STRONG, EVENTUAL, STRONG)]
        await asyncio.sleep(0.01)
        barrier.set()
        try:
            return await asyncio.gather(*tasks)
        finally:
            await sync_to_async(connections.close_all)()

    served = asyncio.run(main())
    assert (served[0], served[1] in REPLICAS, served[2]) == ("default", True, "default")


def test_a_concurrent_read_of_the_same_token_does_not_erase_a_writes_position():
    token = "a-token-used-by-two-requests-at-once"
    reading, writing = PositionStore.for_token(token), PositionStore.for_token(token)
    with consistency_context(store=reading) as read, consistency_context(store=writing) as write:
        read.session_state()
        write.session_state()
        with transaction.atomic():
            write.note_write("profile:1", version=7)
        write.flush()
        read.note_seen("profile:2", version=3)
        read.flush()

    state = PositionStore.for_token(token).load()
    assert state.writes["profile:1"].lsn > 0
    assert state.writes == write.state.writes
    assert state.seen == {"profile:1": 7, "profile:2": 3}
