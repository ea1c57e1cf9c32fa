import factory

from accounts.models import Account
from accounts.services import account_create
from tests.factories import UserFactory


class AccountFactory(factory.django.DjangoModelFactory):
    """An empty account, opened as production opens one: through ``account_create``, whose
    ``AccountOpened`` event is then delivered to the ledger's consumer (the task function a
    worker runs, in this process), so that the ledger's read model knows the account at once.
    Give it money with ``deposit`` (tests/saga/conftest.py), which goes through the deposit
    service so that the journal explains the balance."""

    class Meta:
        model = Account
        database = "accounts"

    owner_id = factory.LazyFunction(lambda: UserFactory().pk)
    currency = "EUR"

    @classmethod
    def _create(cls, model_class, *, owner_id: int, currency: str) -> Account:
        from tests.saga.conftest import account_announcement_deliver

        account = account_create(owner_id=owner_id, currency=currency)
        account_announcement_deliver(account)
        return account
