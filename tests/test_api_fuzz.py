"""Schemathesis against our own OpenAPI schema, in-process, authenticated as staff: no
response is a server error, and every response matches the schema (all default checks).

Examples per operation: STATELAB_FUZZ_EXAMPLES (CI: a few; ``make fuzz``: many more).
"""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig

from config.wsgi import application
from tests.factories import StaffFactory

EXAMPLES = int(os.environ.get("STATELAB_FUZZ_EXAMPLES", "8"))

# Writing fault switches is left to tests/test_faults.py: random values would arm real crash
# points (SIGKILL of this very process) and real replica delays of up to a minute. Likewise
# the quorum node switches (they stop and freeze real servers), and the quorum store's values,
# which need the storage nodes running (a 503 otherwise): tests/quorum covers their input; and
# the regions' staff switches (tests/regions): they cut the shared link proxy's routes, run the
# split-brain vignette or repair the regions, which this suite does not start; and killing the
# cluster's leader, switching it over or changing its replication mode (tests/ha/).
schema = (
    schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", application, config=SchemathesisConfig.discover()
    )
    .exclude(path="/api/faults/", method=["PUT", "PATCH"])
    .exclude(path="/api/quorum/nodes/{node}", method="PUT")
    .exclude(path="/api/quorum/{key}")
    .exclude(path=["/api/regions/network", "/api/regions/split-brain", "/api/regions/anti-entropy"])
    .exclude(path="/api/ha/faults/kill-leader")
    .exclude(path="/api/ha/switchover")
    .exclude(path="/api/ha/", method=["PATCH"])
)


@pytest.fixture
def connections_kept_open():
    """The WSGI app closes database connections after each request; inside a test's
    transaction they must stay open, as Django's own test client arranges."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def staff_token_header(db, connections_kept_open) -> dict[str, str]:
    staff = StaffFactory(username="fuzz-staff", is_superuser=True)
    return {"Authorization": f"Token {Token.objects.get_or_create(user=staff)[0].key}"}


@pytest.mark.django_db(databases="__all__")
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_answers_every_generated_request_within_its_schema(case, staff_token_header):
    case.call_and_validate(headers=staff_token_header)
