from django.contrib import admin, messages
from django.db.models import Case, IntegerField, Value, When

from core.admin import ReadOnlyMixin
from ledger.models import (
    JournalEntry,
    KnownAccount,
    LedgerOutbox,
    LedgerParkedMessage,
    Posting,
    Transfer,
    TransferTransition,
)
from ledger.services import saga_redrive


class TransitionInline(ReadOnlyMixin, admin.TabularInline):
    model = TransferTransition
    extra = 0
    fields = ["at", "from_state", "to_state", "actor", "reason"]
    readonly_fields = fields
    verbose_name_plural = "timeline"


@admin.register(Transfer)
class TransferAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Stalest non-terminal transfers first: those are the ones to look at (and re-drive)."""

    list_display = [
        "id",
        "state",
        "amount",
        "currency",
        "source_account_id",
        "destination_account_id",
        "failure_reason",
        "driven_at",
        "redrive_count",
        "notified_at",
    ]
    list_filter = ["state", "currency"]
    search_fields = ["=id", "=owner_id"]
    inlines = [TransitionInline]
    actions = ["redrive"]

    def get_queryset(self, request):
        terminal = [state.value for state in Transfer.TERMINAL]
        return (
            super()
            .get_queryset(request)
            .annotate(
                terminal_rank=Case(
                    When(state__in=terminal, then=Value(1)),
                    default=Value(0),
                    output_field=IntegerField(),
                )
            )
            .order_by("terminal_rank", "driven_at")
        )

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method == "GET"

    @admin.action(description="Re-drive the selected sagas (re-send the awaited command)")
    def redrive(self, request, queryset) -> None:
        actor = f"staff:{request.user.get_username()}"
        redriven = sum(saga_redrive(transfer_id=transfer.id, actor=actor) for transfer in queryset)
        skipped = queryset.count() - redriven
        self.message_user(
            request,
            f"Re-drove {redriven} transfer(s); {skipped} had nothing to re-drive.",
            messages.SUCCESS,
        )


class PostingInline(ReadOnlyMixin, admin.TabularInline):
    model = Posting
    extra = 0
    fields = ["account_id", "amount", "currency"]
    readonly_fields = fields


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "kind", "currency", "transfer_id", "deposit_id", "created_at"]
    list_filter = ["kind", "currency"]
    search_fields = ["=transfer_id", "=deposit_id"]
    inlines = [PostingInline]

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method == "GET"


@admin.register(LedgerOutbox)
class LedgerOutboxAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "task", "created_at", "published_at", "publish_count"]
    list_filter = [("published_at", admin.EmptyFieldListFilter)]

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_staff


@admin.register(KnownAccount)
class KnownAccountAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Read-only: the ledger's copy of what accounts announced; changed only by its events."""

    list_display = ["account_id", "owner_id", "currency", "status", "version", "updated_at"]
    list_filter = ["status", "currency"]
    search_fields = ["=account_id", "=owner_id"]


@admin.register(LedgerParkedMessage)
class LedgerParkedMessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Messages a consumer set aside (core.consumers): read the reason, fix the cause, and send
    the message again; never applied by themselves."""

    list_display = ["parked_at", "consumer", "message_id", "reason", "attempts"]
    list_filter = ["consumer"]
    search_fields = ["=message_id"]
