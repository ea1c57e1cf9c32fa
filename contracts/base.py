"""The shape every message shares: a name (the consuming Celery task) and a JSON payload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Self


class MessageMalformed(ValueError):
    """A payload lacks a field its message type needs (a producer out of step with the
    contract); the consumer refuses it instead of guessing."""


@dataclass(frozen=True)
class Message:
    """Base of every message type. Subclasses set ``name`` and declare their fields, all of
    JSON types (str, int), so that a payload survives the broker unchanged."""

    name: ClassVar[str]

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Self:
        """The message from a delivered payload. Keys the type does not know (the delivery's
        ``message_id``, a field a newer producer added) are ignored; a missing one raises."""
        missing = [field.name for field in fields(cls) if field.name not in payload]
        if missing:
            raise MessageMalformed(f"{cls.name}: payload lacks {', '.join(missing)}")
        return cls(**{field.name: payload[field.name] for field in fields(cls)})
