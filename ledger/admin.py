from django.contrib import admin, messages
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from core.admin import OutboxAdmin, ReadOnlyMixin, money_column
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
        "amount_shown",
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
    amount_shown = money_column("amount", description="amount")
    exclude = ["amount"]
    readonly_fields = ["amount_shown"]
    # The page's "Re-drive" button (ledger/templates/admin/ledger/transfer/change_form.html).
    change_form_template = "admin/ledger/transfer/change_form.html"

    def get_urls(self):
        redrive_one = self.admin_site.admin_view(self.redrive_one)
        return [
            path("<uuid:transfer_id>/redrive/", redrive_one, name="ledger_transfer_redrive"),
            *super().get_urls(),
        ]

    def redrive_one(self, request: HttpRequest, transfer_id) -> HttpResponseRedirect:
        """The button: re-send the command the saga awaits (POST only, like every change)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        transfer = get_object_or_404(self.get_queryset(request), pk=transfer_id)
        actor = f"staff:{request.user.get_username()}"
        if saga_redrive(transfer_id=transfer.id, actor=actor):
            self.message_user(request, "Re-drove the transfer.", messages.SUCCESS)
        else:
            self.message_user(request, "Nothing to re-drive: it awaits no step.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:ledger_transfer_change", args=[transfer.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        transfer = self.get_object(request, object_id)
        awaits_a_step = transfer is not None and (
            not transfer.is_terminal
            or (transfer.state == Transfer.State.COMPLETED and transfer.notified_at is None)
        )
        extra_context = {**(extra_context or {}), "show_redrive": awaits_a_step}
        return super().change_view(request, object_id, form_url, extra_context)

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
    fields = ["account_id", "amount_shown"]
    readonly_fields = fields
    amount_shown = money_column("amount", description="amount")


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "kind", "currency", "transfer_id", "deposit_id", "created_at"]
    list_filter = ["kind", "currency"]
    search_fields = ["=transfer_id", "=deposit_id"]
    inlines = [PostingInline]

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method == "GET"


@admin.register(LedgerOutbox)
class LedgerOutboxAdmin(ReadOnlyMixin, OutboxAdmin):
    outbox_using = "ledger"

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
