"""The profile API: one profile per user, owners edit, everyone authenticated reads."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from consistency.store import PositionStore
from profiles.cache import profile_cache_get
from profiles.models import Profile
from tests.factories import StaffFactory
from tests.profiles.conftest import ROUTED_DATABASES
from tests.profiles.factories import ProfileUserFactory, profile_of, token_client

pytestmark = pytest.mark.django_db(databases=ROUTED_DATABASES, transaction=True)


def test_every_new_user_gets_a_profile_at_version_1():
    user = ProfileUserFactory()

    assert profile_of(user).version == 1


def test_the_data_migration_gives_existing_users_a_profile():
    executor = MigrationExecutor(connection)
    executor.migrate([("profiles", None)])
    get_user_model().objects.bulk_create([get_user_model()(username="before-profiles")])
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("profiles"))

    user = get_user_model().objects.get(username="before-profiles")
    assert Profile.objects.filter(user=user, version=1).exists()


def test_the_owner_changes_fields_and_the_version_increases():
    user = ProfileUserFactory()

    response = token_client(user).patch(
        "/api/profiles/me/",
        {
            "display_name": "Ada",
            "bio": "Analyst",
            "location": "London",
            "avatar_url": "https://example.test/ada.png",
        },
        format="json",
    )

    profile = profile_of(user)
    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert (profile.display_name, profile.location, profile.version) == ("Ada", "London", 2)


def test_patch_by_user_id_works_for_the_owner():
    user = ProfileUserFactory()

    response = token_client(user).patch(
        f"/api/profiles/{user.pk}/", {"location": "Oslo"}, format="json"
    )

    assert response.status_code == 200
    assert profile_of(user).location == "Oslo"


def test_another_users_profile_cannot_be_changed():
    owner, other = ProfileUserFactory(), ProfileUserFactory()

    response = token_client(other).patch(
        f"/api/profiles/{owner.pk}/", {"display_name": "Mallory"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "profile_not_owner"
    assert profile_of(owner).version == 1


def test_any_authenticated_user_reads_another_users_profile():
    owner, reader = ProfileUserFactory(), ProfileUserFactory()
    token_client(owner).patch("/api/profiles/me/", {"display_name": "Owner"}, format="json")

    response = token_client(reader).get(f"/api/profiles/{owner.pk}/")

    assert response.status_code == 200
    assert response.json()["display_name"] == "Owner"


def test_anonymous_callers_are_refused():
    user = ProfileUserFactory()

    response = APIClient().get(f"/api/profiles/{user.pk}/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_an_unknown_profile_is_404():
    response = token_client(ProfileUserFactory()).get("/api/profiles/987654321/")

    assert response.status_code == 404
    assert response.json()["code"] == "profile_not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"nickname": "x"}, "nickname"),
        ({"version": 99}, "version"),
        ({"display_name": "x" * 81}, "display_name"),
        ({"location": "x" * 81}, "location"),
        ({"bio": "x" * 501}, "bio"),
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ({"avatar_url": "ftp://example.test/a.png"}, "avatar_url"),
        ({"avatar_url": "not a url"}, "avatar_url"),
        ({"location": 0}, "location"),
        ({"bio": None}, "bio"),
        ({}, "non_field_errors"),
    ],
)
def test_invalid_changes_are_a_400_naming_the_field(body, field):
    user = ProfileUserFactory()

    response = token_client(user).patch("/api/profiles/me/", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["errors"]
    assert profile_of(user).version == 1


def test_a_body_that_is_not_an_object_is_a_400():
    response = token_client(ProfileUserFactory()).patch("/api/profiles/me/", [1], format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize("level", ["linearizable", "", "STRONG", " session"])
def test_an_unknown_consistency_is_a_400_with_a_code(level):
    user = ProfileUserFactory()

    response = token_client(user).get("/api/profiles/me/", HTTP_X_CONSISTENCY=level)

    assert response.status_code == 400
    assert response.json()["code"] == "consistency_invalid"


def test_the_consistency_can_be_given_as_a_query_parameter():
    user = ProfileUserFactory()

    response = token_client(user).get("/api/profiles/me/?consistency=strong")

    assert response.status_code == 200
    assert response["X-Served-By"] == "primary"
    assert response["X-Cache"] == "bypass"


def test_staff_edit_a_profile_in_the_admin_through_the_service():
    user = ProfileUserFactory()
    staff = StaffFactory(is_superuser=True)
    client = APIClient()
    client.force_login(staff)

    response = client.post(
        f"/admin/profiles/profile/{user.pk}/change/",
        {
            "display_name": "Set by staff",
            "bio": "",
            "location": "Rome",
            "avatar_url": "",
            "changes-TOTAL_FORMS": "0",
            "changes-INITIAL_FORMS": "0",
            "changes-MIN_NUM_FORMS": "0",
            "changes-MAX_NUM_FORMS": "0",
        },
    )

    profile = profile_of(user)
    cached = profile_cache_get(user_id=user.pk)
    assert response.status_code == 302
    assert (profile.display_name, profile.version) == ("Set by staff", 2)
    assert cached is not None
    assert cached.version == 2
    assert cached.data["display_name"] == "Set by staff"
    staff_positions = PositionStore.for_session(client.session.session_key).load()
    assert f"profile:{user.pk}" in staff_positions.writes


def test_the_admin_refuses_an_avatar_url_that_is_not_http():
    user = ProfileUserFactory()
    client = APIClient()
    client.force_login(StaffFactory(is_superuser=True))

    response = client.post(
        f"/admin/profiles/profile/{user.pk}/change/",
        {
            "display_name": "",
            "bio": "",
            "location": "",
            "avatar_url": "javascript:alert(1)",
            "changes-TOTAL_FORMS": "0",
            "changes-INITIAL_FORMS": "0",
            "changes-MIN_NUM_FORMS": "0",
            "changes-MAX_NUM_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert profile_of(user).version == 1
