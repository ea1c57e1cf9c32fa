from django.contrib import admin

from consistency.context import consistency_bind_request
from profiles.domain import EDITABLE_FIELDS
from profiles.models import Profile, ProfileChange
from profiles.services import profile_update


class ProfileChangeInline(admin.TabularInline):
    model = ProfileChange
    fields = ("version", "display_name", "read_from", "recorded_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    """Staff edit profiles through ``profile_update``: the version increases, the cache is
    updated through its fence, and the staff session's write position is kept."""

    list_display = ("user", "display_name", "location", "version", "updated_at")
    search_fields = ("user__username", "display_name", "location")
    fields = ("user", *EDITABLE_FIELDS, "version", "updated_at")
    readonly_fields = ("user", "version", "updated_at")
    inlines = [ProfileChangeInline]

    def get_queryset(self, request):
        return super().get_queryset(request).using("default")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        changes = {
            name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE_FIELDS
        }
        if changes:
            consistency_bind_request(request)  # the staff session keeps the write position
            updated = profile_update(user_id=obj.pk, changes=changes, actor_id=request.user.pk)
            obj.version = updated.version
