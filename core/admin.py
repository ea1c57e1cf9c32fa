from django.contrib import admin, messages

from core.faults import DomainError, faults_set
from core.models import FaultSwitch


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
