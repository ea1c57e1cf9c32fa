"""The profiles' leaf items, shared by reads and writes: errors, the object key, the shape."""

from __future__ import annotations

from typing import Any

from core.errors import DomainError
from profiles.models import Profile

EDITABLE_FIELDS = ("display_name", "bio", "location", "avatar_url")
PROFILE_CHANGE_RECORD_TASK = "profiles.profile_change_record"


class ProfileNotFound(DomainError):
    code = "profile_not_found"
    status = 404
    title = "Profile not found"


class ProfileNotOwner(DomainError):
    code = "profile_not_owner"
    status = 403
    title = "Only the owner can change a profile"


def profile_key(user_id: int) -> str:
    """The object key under which sessions track their writes and reads of a profile."""
    return f"profile:{user_id}"


def profile_data(profile: Profile) -> dict[str, Any]:
    """The profile as the API and the cache hold it."""
    return {
        "user_id": profile.user_id,
        "display_name": profile.display_name,
        "bio": profile.bio,
        "location": profile.location,
        "avatar_url": profile.avatar_url,
        "version": profile.version,
        "updated_at": profile.updated_at.isoformat(),
    }
