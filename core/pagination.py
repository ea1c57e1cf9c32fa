"""The one pagination convention of the API's lists: DRF's cursor pagination.

A list answers ``{"next": url | null, "previous": url | null, "results": [...]}``, newest or
lowest first as the list says; ``limit`` (1 to ``MAX_PAGE_SIZE``, default ``PAGE_SIZE``) sets
the page's size. Following ``next`` until it is null visits every row once, however many rows
are added meanwhile (cursors hold a position, not an offset). Nothing is cut silently: a bad
``limit`` or a forged cursor is a 400, never a shorter page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from core.errors import DomainError

PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
LIMIT_PARAM = "limit"
CURSOR_PARAM = "cursor"


class CursorInvalid(DomainError):
    code = "cursor_invalid"
    title = "The cursor is not one this list gave"


class CursorPage(CursorPagination):
    """Cursor pages of ``PAGE_SIZE`` rows; subclasses (``cursor_pages``) fix the ordering."""

    page_size = PAGE_SIZE
    max_page_size = MAX_PAGE_SIZE
    page_size_query_param = LIMIT_PARAM
    cursor_query_param = CURSOR_PARAM

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(LIMIT_PARAM)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
            raise ValidationError({LIMIT_PARAM: [f"An integer from 1 to {MAX_PAGE_SIZE}."]})
        return int(raw)

    example_path = "/api/"

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """DRF's envelope, with example links of this list (the schema's examples use them)."""
        envelope = super().get_paginated_response_schema(schema)
        base = f"http://127.0.0.1:8000{self.example_path}?{CURSOR_PARAM}="
        envelope["properties"]["next"]["example"] = base + "cD0yMDI2LTExLTMw&limit=2"
        envelope["properties"]["previous"]["example"] = base + "cj0xJnA9MjAyNi0xMS0zMA&limit=2"
        return envelope

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise CursorInvalid(field=CURSOR_PARAM) from None


def cursor_pages(*ordering: str, path: str) -> type[CursorPage]:
    """The pagination of the list at ``path`` ordered by ``ordering``; its first field must be
    unique or nearly so (ties are told apart by an offset), and never change once the row
    exists."""
    return type("CursorPage", (CursorPage,), {"ordering": ordering, "example_path": path})


class PaginatedListMixin:
    """For an ``APIView`` with a ``pagination_class``: answer one page of a queryset. The
    schema (drf-spectacular) describes the envelope and the ``cursor``/``limit`` parameters
    from the same ``pagination_class``."""

    pagination_class: type[CursorPage]
    request: Request

    def page_response(
        self, rows: QuerySet | Sequence, serializer: type[BaseSerializer], **context: Any
    ) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, self.request, view=self)  # type: ignore[arg-type]
        data = serializer(page, many=True, context=context).data
        return paginator.get_paginated_response(data)
