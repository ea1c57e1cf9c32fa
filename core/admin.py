from django.contrib import admin, messages

from core.faults import DomainError, faults_set
from core.models import FaultSwitch
from core.money import amount_format
from core.outbox import outbox_resend


def money_column(amount_field: str, *, description: str):
    """An admin column showing ``amount_field`` (integer minor units) in major units with the
    row's currency, e.g. ``12.34 EUR``."""

    @admin.display(description=description, ordering=amount_field)
    def column(self, obj) -> str:
        return f"{amount_format(getattr(obj, amount_field), currency=obj.currency)} {obj.currency}"

    return column


class OutboxAdmin(admin.ModelAdmin):
    """An outbox's admin page with a "resend" action. ``outbox_using``: its database."""

    outbox_using: str
    list_display = ["id", "task", "request_id", "created_at", "published_at", "publish_count"]
    list_filter = [("published_at", admin.EmptyFieldListFilter)]
    search_fields = ["=request_id", "task"]
    actions = ["resend"]

    @admin.action(description="Resend the selected messages (same ids: applied at most once)")
    def resend(self, request, queryset) -> None:
        sent = outbox_resend(using=self.outbox_using, ids=[row.id for row in queryset])
        self.message_user(request, f"Resent {sent} message(s).", messages.SUCCESS)


class ReadOnlyMixin:
    """For admin pages (and inlines) of rows that change only through the services, or never:
    no add, change or delete."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(FaultSwitch)
class FaultSwitchAdmin(admin.ModelAdmin):
    """Switch values are changed through ``faults_set`` so that validation and apply hooks run."""

    list_display = ["name", "value", "updated_by", "updated_at"]
    readonly_fields = ["updated_by", "updated_at"]

    def save_model(self, request, obj, form, change) -> None:
        try:
            faults_set(values={obj.name: obj.value}, actor=request.user.get_username())
        except DomainError as error:
            self.message_user(request, error.detail, level=messages.ERROR)
