from django.contrib import admin

from accounts.models import (
    Account,
    AccountOperation,
    AccountsInbox,
    AccountsOutbox,
    AccountsParkedMessage,
)
from accounts.services import account_create, account_status_set
from core.admin import OutboxAdmin, ReadOnlyMixin, money_column


class OperationInline(admin.TabularInline):
    model = AccountOperation
    extra = 0
    can_delete = False
    fields = [
        "kind",
        "transfer_id",
        "deposit_id",
        "amount_shown",
        "applied",
        "reason",
        "created_at",
    ]
    readonly_fields = fields
    ordering = ["-id"]
    amount_shown = money_column("amount", description="amount")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    """Balances change only through operations (deposits via the API, the saga's steps).

    Staff open accounts and change their status through the services (a status change locks
    the row and bumps its version, like any other writer); owner and currency are fixed once
    the account exists (the journal's postings name them), and accounts are never deleted."""

    list_display = ["id", "owner_id", "balance_shown", "status", "version", "updated_at"]
    list_filter = ["status", "currency"]
    search_fields = ["=id", "=owner_id"]
    readonly_fields = ["balance_shown", "version", "created_at", "updated_at"]
    exclude = ["balance"]
    inlines = [OperationInline]
    balance_shown = money_column("balance", description="balance")

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        if obj is None:
            return [*self.readonly_fields, "status"]
        return [*self.readonly_fields, "owner_id", "currency"]

    def save_model(self, request, obj: Account, form, change: bool) -> None:
        if not change:
            created = account_create(owner_id=obj.owner_id, currency=obj.currency)
            obj.pk, obj._state.adding, obj._state.db = created.pk, False, created._state.db
        elif "status" in form.changed_data:
            account_status_set(account_id=obj.pk, status=obj.status)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AccountOperation)
class AccountOperationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "account",
        "amount_shown",
        "applied",
        "reason",
        "transfer_id",
        "created_at",
    ]
    list_filter = ["kind", "applied", "currency"]
    search_fields = ["=transfer_id", "=deposit_id"]
    amount_shown = money_column("amount", description="amount")


@admin.register(AccountsOutbox)
class AccountsOutboxAdmin(OutboxAdmin):
    outbox_using = "accounts"

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AccountsInbox)
class AccountsInboxAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only: removing a row would let a redelivered message apply its effect again."""

    list_display = ["message_id", "consumer", "received_at"]
    list_filter = ["consumer"]
    search_fields = ["=message_id"]


@admin.register(AccountsParkedMessage)
class AccountsParkedMessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Messages a consumer set aside (core.consumers): read the reason, fix the cause, and send
    the message again; never applied by themselves."""

    list_display = ["parked_at", "consumer", "message_id", "reason", "attempts"]
    list_filter = ["consumer"]
    search_fields = ["=message_id"]
