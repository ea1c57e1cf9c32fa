"""With every standby of the cluster really stopped (their Patroni and Postgres ended), reads
still answer from the primary and readiness names the replica. One stop for the module: each
stop and restart costs the cluster's settling, several seconds."""

import pytest
from django.conf import settings
from django.db import connections

from consistency.pool import replica_pool
from devstack import config as devstack_config
from tests import cluster
from tests.profiles.conftest import ROUTED_DATABASES, replicas_caught_up
from tests.profiles.factories import ProfileUserFactory, token_client

pytestmark = [
    pytest.mark.replication,
    pytest.mark.django_db(databases=ROUTED_DATABASES, transaction=True),
]
REPLICA = settings.REPLICA_ALIASES[0]
REPLICAS = set(settings.REPLICA_ALIASES)
NO_CACHE = {"HTTP_CACHE_CONTROL": "no-cache"}


@pytest.fixture(scope="module", autouse=True)
def replica_stopped(django_db_setup, django_db_blocker):
    """Every standby stopped for the module's tests (after the test databases reached them),
    then started again, streaming and caught up."""
    if devstack_config.postgres_given():
        pytest.skip("Postgres is given by DATABASE_URL: its replicas are not ours to stop")
    stopped = [cluster.component(member.name) for member in cluster.standbys()]
    for member in stopped:
        member.down()
    for alias in REPLICAS:
        connections[alias].close()
    replica_pool.reset()
    try:
        yield
    finally:
        for alias in REPLICAS:
            connections[alias].close()
        for member in stopped:
            member.up()
        cluster.cluster_settled()
        with django_db_blocker.unblock():
            replicas_caught_up(timeout_s=60)


def test_with_the_replica_stopped_reads_still_succeed_from_the_primary():
    client = token_client(ProfileUserFactory())

    responses = [
        client.get("/api/profiles/me/", HTTP_X_CONSISTENCY=level, **NO_CACHE)
        for level in ("session", "eventual", "session")
    ]

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert {response["X-Served-By"] for response in responses} == {"primary"}


def test_with_the_replica_stopped_readyz_names_it():
    response = token_client(ProfileUserFactory()).get("/readyz")

    assert response.status_code == 503
    assert f"database:{REPLICA}" in response.json()["down"]
