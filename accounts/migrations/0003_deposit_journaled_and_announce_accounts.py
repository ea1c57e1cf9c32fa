"""Two changes that come with the ledger's read model of accounts:

- ``journaled_at``: the ledger now acknowledges each deposit's journal entry
  (``DepositJournaled``), and the deposit watchdog (accounts' own) resends what is not
  acknowledged. Deposits from before have none: the watchdog resends those of its window once,
  the ledger's inbox ignores each copy and acknowledges it.
- Every existing account is announced (``AccountOpened`` in the outbox; the relay's sweep
  publishes it), so that the ledger's read model knows the accounts opened before it existed.
"""

import uuid

from django.db import migrations, models
from django.utils import timezone

from contracts.accounts import AccountOpened


def announce_accounts(apps, schema_editor) -> None:
    database = schema_editor.connection.alias
    account_model = apps.get_model("accounts", "Account")
    outbox_model = apps.get_model("accounts", "AccountsOutbox")
    now = timezone.now()
    outbox_model.objects.using(database).bulk_create(
        outbox_model(
            id=uuid.uuid4(),
            task=AccountOpened.name,
            payload=AccountOpened(
                account_id=account.id,
                owner_id=account.owner_id,
                currency=account.currency,
                status=account.status,
                version=account.version,
            ).to_payload(),
            created_at=now,
        )
        for account in account_model.objects.using(database).order_by("id").iterator()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_deposit_created_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="accountoperation",
            name="journaled_at",
            field=models.DateTimeField(
                blank=True,
                help_text="deposits: when the ledger acknowledged its entry",
                null=True,
            ),
        ),
        migrations.RunPython(announce_accounts, migrations.RunPython.noop),
    ]
