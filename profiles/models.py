from django.conf import settings
from django.core.validators import URLValidator
from django.db import models

DISPLAY_NAME_MAX = 80
BIO_MAX = 500
LOCATION_MAX = 80
AVATAR_URL_MAX = 300
avatar_url_validator = URLValidator(
    schemes=["http", "https"], message="Enter an http or https URL."
)


class Profile(models.Model):
    """One per user, on the primary (``default``); read from replicas by the consistency
    router. ``version`` increases by one on every write: it fences the cache and lets a
    session check that it never reads an older version than one it has seen."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="profile"
    )
    display_name = models.CharField(max_length=DISPLAY_NAME_MAX, blank=True, default="")
    bio = models.TextField(max_length=BIO_MAX, blank=True, default="")
    location = models.CharField(max_length=LOCATION_MAX, blank=True, default="")
    avatar_url = models.CharField(
        max_length=AVATAR_URL_MAX, blank=True, default="", validators=[avatar_url_validator]
    )
    version = models.PositiveBigIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(version__gte=1), name="version_ge_1")
        ]

    def __str__(self) -> str:
        return f"profile of user {self.user_id} (v{self.version})"


class ProfileChange(models.Model):
    """A change-feed entry built by a Celery task from what it reads after a profile write:
    the task reads through the consistency router with the writer's positions, so an entry
    never records an older version than the write that caused it."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="changes")
    version = models.PositiveBigIntegerField()
    display_name = models.CharField(max_length=DISPLAY_NAME_MAX, blank=True)
    read_from = models.CharField(max_length=40)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["profile", "version"], name="one_change_per_version")
        ]
        ordering = ["-recorded_at"]

    def __str__(self) -> str:
        return f"{self.profile_id} v{self.version}"
