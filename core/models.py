from django.db import models


class FaultSwitch(models.Model):
    """A fault switch's value, when set (see ``core.faults``; unset switches use defaults)."""

    name = models.CharField(primary_key=True, max_length=64)
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"
