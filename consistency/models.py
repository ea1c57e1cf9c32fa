from django.db import models


class SessionPosition(models.Model):
    """One object's positions for one session: the WAL position of the session's last write
    of it and the timeline it was written on (0: none, or replayed by every replica), and the
    highest version of it the session has seen (its own writes included).

    ``owner`` is ``t:`` + a digest of a token, or ``s:`` + a digest of a browser session's
    key. Rows live on the primary (``default``), next to the tokens, the sessions and the
    writes themselves: a write's version floor is saved in the write's own transaction, and
    the token authentication reads a token's rows in the query that authenticates it. Both
    positions are only ever raised (the write's as (timeline, LSN), in that order), so
    concurrent requests of one session merge their positions instead of overwriting each
    other's.
    """

    owner = models.CharField(max_length=64)
    object_key = models.CharField(max_length=200)
    write_lsn = models.BigIntegerField(default=0)
    write_timeline = models.IntegerField(default=0)
    seen_version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "object_key"], name="one_position_per_object")
        ]
        indexes = [models.Index(fields=["updated_at"], name="position_updated_at")]

    def __str__(self) -> str:
        return f"{self.owner} {self.object_key}"
