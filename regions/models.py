"""The regions' control plane, in the default database: the network the operator asked for
(so that it can be set again after the proxy restarts) and when it last changed, converged
and was repaired. The regions' data lives in the regions' own databases (regions.schema)."""

from django.db import models


def one_group() -> list[list[str]]:
    return [["r1", "r2", "r3"]]


class RegionNetwork(models.Model):
    """A single row (id 1)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    groups = models.JSONField(default=one_group)
    delays = models.JSONField(default=dict, help_text="link -> delay in ms")
    changed_at = models.DateTimeField(auto_now=True)
    partitioned_at = models.DateTimeField(null=True, blank=True)
    healed_at = models.DateTimeField(null=True, blank=True)
    converged_at = models.DateTimeField(null=True, blank=True)
    last_anti_entropy = models.JSONField(null=True, blank=True)
    last_vignette = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = "region network"

    def __str__(self) -> str:
        return " | ".join(",".join(group) for group in self.groups)

    @property
    def partitioned(self) -> bool:
        return len(self.groups) > 1
