"""Object-level authorization, generated from the OpenAPI schema: for every operation whose
path names an object, user A's token on user B's object, and no token at all. Zero leaks.

Each path parameter needs a recipe that makes an object owned by B; an operation with a
parameter nobody wrote a recipe for fails the test, so a new endpoint cannot slip through.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.services import account_create
from ledger.services import transfer_create
from tests.factories import UserFactory
from tests.saga.factories import AccountFactory

PARAMETER = re.compile(r"{(\w+)}")
BODY_METHODS = {"post", "put", "patch"}


def _account(owner) -> str:
    return str(account_create(owner_id=owner.pk, currency="EUR").pk)


def _transfer(owner) -> str:
    source = AccountFactory(owner_id=owner.pk)
    destination = AccountFactory(owner_id=owner.pk)
    transfer = transfer_create(
        user_id=owner.pk,
        source_id=source.pk,
        destination_id=destination.pk,
        amount="1.00",
        currency="EUR",
    )
    return str(transfer.pk)


# What another user may do to B's object, beyond nothing. Profiles are readable by every
# authenticated user (architecture section 6); only their owner may change them.
OWNED_BY = {
    "account_id": _account,
    "transfer_id": _transfer,
    "user_id": lambda owner: str(owner.pk),
}
READABLE_BY_OTHERS = {"user_id"}
# Counter keys are shared names, not objects anyone owns (any user may count "likes:42"); so
# are the regions' values (any user reads and writes its nearest region's keys); quorum nodes
# are infrastructure (staff switch them).
NOT_OWNED = {"key", "node", "region"}


def _operations() -> list[tuple[str, str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, methods in schema["paths"].items():
        parameters = PARAMETER.findall(path)
        if not parameters:
            continue
        for method in methods:
            operations.append((path, method, parameters[0]))
    return operations


OPERATIONS = _operations()
OWNED_OPERATIONS = [operation for operation in OPERATIONS if operation[2] in OWNED_BY]


def _call(client: APIClient, method: str, url: str):
    if method in BODY_METHODS:
        return getattr(client, method)(url, {}, format="json")
    return getattr(client, method)(url)


def test_the_matrix_covers_every_operation_on_an_object():
    assert OPERATIONS
    assert {parameter for _path, _method, parameter in OPERATIONS} <= set(OWNED_BY) | NOT_OWNED


@pytest.mark.django_db(databases=["default", *settings.REPLICA_ALIASES, "accounts", "ledger"])
@pytest.mark.parametrize(("path", "method", "parameter"), OWNED_OPERATIONS, ids=str)
def test_another_users_object_is_out_of_reach(path, method, parameter):
    make: Callable = OWNED_BY[parameter]
    owner, intruder = UserFactory(), UserFactory()
    url = path.replace(f"{{{parameter}}}", make(owner))
    client = APIClient()
    client.force_authenticate(intruder)

    response = _call(client, method, url)

    if method == "get" and parameter in READABLE_BY_OTHERS:
        assert response.status_code == 200
    else:
        assert response.status_code in {403, 404}, (method, url, response.status_code)


@pytest.mark.django_db(databases=["default", *settings.REPLICA_ALIASES, "accounts", "ledger"])
@pytest.mark.parametrize(("path", "method", "parameter"), OPERATIONS, ids=str)
def test_no_object_is_reachable_without_credentials(path, method, parameter):
    value = "any-key" if parameter in NOT_OWNED else OWNED_BY[parameter](UserFactory())
    url = path.replace(f"{{{parameter}}}", value)

    response = _call(APIClient(), method, url)

    assert response.status_code == 401, (method, url, response.status_code)
