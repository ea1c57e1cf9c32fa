from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.fields import StrictCharField
from profiles.models import (
    AVATAR_URL_MAX,
    BIO_MAX,
    DISPLAY_NAME_MAX,
    LOCATION_MAX,
    avatar_url_validator,
)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "profile",
            value={
                "user_id": 2,
                "display_name": "Alice",
                "bio": "Sees her own edits at once.",
                "location": "Lyon",
                "avatar_url": "",
                "version": 3,
                "updated_at": "2026-11-30T09:13:22.033614+00:00",
            },
            response_only=True,
        )
    ]
)
class ProfileOutputSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    display_name = serializers.CharField()
    bio = serializers.CharField()
    location = serializers.CharField()
    avatar_url = serializers.CharField()
    version = serializers.IntegerField(help_text="Increases by one on every write.")
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "rename", value={"display_name": "Alice", "location": "Lyon"}, request_only=True
        )
    ]
)
class ProfileUpdateSerializer(serializers.Serializer):
    """The editable fields; any other field (``version`` included) is rejected."""

    display_name = StrictCharField(max_length=DISPLAY_NAME_MAX, allow_blank=True, required=False)
    bio = StrictCharField(
        max_length=BIO_MAX, allow_blank=True, required=False, trim_whitespace=False
    )
    location = StrictCharField(max_length=LOCATION_MAX, allow_blank=True, required=False)
    avatar_url = StrictCharField(
        max_length=AVATAR_URL_MAX,
        allow_blank=True,
        required=False,
        validators=[avatar_url_validator],
        help_text="An absolute http or https URL, or empty.",
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
            if not data:
                raise serializers.ValidationError(
                    {"non_field_errors": [f"Give at least one of: {', '.join(self.fields)}."]}
                )
        return super().to_internal_value(data)
