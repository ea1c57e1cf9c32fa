import factory

from accounts.models import Account
from tests.factories import UserFactory


class AccountFactory(factory.django.DjangoModelFactory):
    """An empty account; give it money with ``deposit`` (tests/saga/conftest.py), which goes
    through the deposit service so that the journal explains the balance."""

    class Meta:
        model = Account
        database = "accounts"

    owner_id = factory.LazyFunction(lambda: UserFactory().pk)
    currency = "EUR"
