"""What an API view uses to honour ``X-Consistency``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from consistency.context import consistency_honour_request
from consistency.levels import LEVELS

CONSISTENCY_PARAMETER = OpenApiParameter(
    "X-Consistency",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    enum=list(LEVELS),
    description="strong: the primary; session (default): read-your-writes and monotonic "
    "reads; eventual: any replica, may be stale. Also accepted as ?consistency=.",
)


class HonoursConsistency:
    """A DRF view mixin: once DRF has authenticated the caller, the request's consistency
    context takes the level it asks for (``400 consistency_invalid`` when it names none) and
    the caller's position store (its token's record, or its session)."""

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        consistency_honour_request(request)
