"""The consistency app as other apps see it: where the header applies, how it is wired."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from consistency.checks import MIDDLEWARE_PATH, ROUTER_PATH, consistency_wiring_check
from tests.factories import UserFactory


@pytest.mark.django_db(databases=["default", "ledger"])
def test_a_bad_consistency_header_is_ignored_where_no_read_honours_it():
    client = APIClient()
    client.force_authenticate(UserFactory())

    response = client.get("/api/transfers/", HTTP_X_CONSISTENCY="linearizable")

    assert response.status_code == 200


def test_the_shipped_settings_pass_the_wiring_check():
    assert consistency_wiring_check() == []


def test_the_wiring_check_names_a_missing_middleware(settings):
    settings.MIDDLEWARE = [path for path in settings.MIDDLEWARE if path != MIDDLEWARE_PATH]

    assert [error.id for error in consistency_wiring_check()] == ["consistency.E001"]


def test_the_wiring_check_names_a_middleware_outside_the_session_middleware(settings):
    others = [path for path in settings.MIDDLEWARE if path != MIDDLEWARE_PATH]

    with override_settings(MIDDLEWARE=[MIDDLEWARE_PATH, *others]):
        errors = consistency_wiring_check()

    assert [error.id for error in errors] == ["consistency.E002"]


def test_the_wiring_check_names_a_router_that_is_not_asked_first(settings):
    others = [path for path in settings.DATABASE_ROUTERS if path != ROUTER_PATH]
    settings.DATABASE_ROUTERS = [*others, ROUTER_PATH]

    assert [error.id for error in consistency_wiring_check()] == ["consistency.E003"]
