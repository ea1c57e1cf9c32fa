import factory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from profiles.models import Profile
from tests.factories import UserFactory


class ProfileUserFactory(UserFactory):
    """A user; its profile comes from the post_save signal, like every user's."""

    username = factory.Sequence(lambda n: f"profile-user-{n}")


def profile_of(user) -> Profile:
    return Profile.objects.using("default").get(pk=user.pk)


def token_client(user) -> APIClient:
    """A client authenticated by a real token (its positions live in Redis)."""
    token, _created = Token.objects.using("default").get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
