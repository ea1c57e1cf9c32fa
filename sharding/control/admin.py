"""Read-only admin pages: the map, moves and hot keys change only through the services."""

from django.contrib import admin

from core.admin import ReadOnlyMixin
from sharding.control.models import BucketMap, BucketMove, HotKeyEpisode


class ReadOnlyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    pass


@admin.register(BucketMap)
class BucketMapAdmin(ReadOnlyAdmin):
    list_display = ("version", "reason", "created_at", "buckets_per_shard")
    readonly_fields = ("version", "reason", "created_at", "buckets_per_shard", "assignment")
    exclude = ()

    @admin.display(description="buckets per shard")
    def buckets_per_shard(self, obj: BucketMap) -> str:
        counts: dict[str, int] = {}
        for alias in obj.assignment:
            counts[alias] = counts.get(alias, 0) + 1
        return ", ".join(f"{alias}: {count}" for alias, count in sorted(counts.items()))


@admin.register(BucketMove)
class BucketMoveAdmin(ReadOnlyAdmin):
    list_display = ("bucket", "source", "target", "state", "started_at", "finished_at")
    list_filter = ("state",)


@admin.register(HotKeyEpisode)
class HotKeyEpisodeAdmin(ReadOnlyAdmin):
    list_display = (
        "key",
        "home",
        "slots",
        "rate_at_detect",
        "detected_at",
        "detect_seconds",
        "cooled_at",
        "cool_seconds",
    )
    search_fields = ("key",)
