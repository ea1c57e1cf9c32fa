from django.contrib import admin

from accounts.models import Account, AccountOperation, AccountsInbox, AccountsOutbox


class OperationInline(admin.TabularInline):
    model = AccountOperation
    extra = 0
    can_delete = False
    fields = ["kind", "transfer_id", "deposit_id", "amount", "applied", "reason", "created_at"]
    readonly_fields = fields
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    """Balances change only through operations (deposits via the API, the saga's steps)."""

    list_display = ["id", "owner_id", "currency", "balance", "status", "version", "updated_at"]
    list_filter = ["status", "currency"]
    search_fields = ["=id", "=owner_id"]
    readonly_fields = ["balance", "version", "created_at", "updated_at"]
    inlines = [OperationInline]


@admin.register(AccountOperation)
class AccountOperationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "account",
        "amount",
        "currency",
        "applied",
        "reason",
        "transfer_id",
        "created_at",
    ]
    list_filter = ["kind", "applied"]
    search_fields = ["=transfer_id", "=deposit_id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AccountsOutbox)
class AccountsOutboxAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "created_at", "published_at", "publish_count"]
    list_filter = [("published_at", admin.EmptyFieldListFilter)]

    def has_change_permission(self, request, obj=None) -> bool:
        return False


admin.site.register(AccountsInbox)
