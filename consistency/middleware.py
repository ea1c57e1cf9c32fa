"""Opens a consistency context per request; after the view, saves the session's positions and
writes the response headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse

from consistency.context import ConsistencyContext, consistency_context


def _finish(response: HttpResponse, context: ConsistencyContext) -> HttpResponse:
    context.flush()
    if context.served_by:
        response["X-Served-By"] = context.served_by
        response["X-Consistency"] = context.level
    for name, value in context.response_headers.items():
        response[name] = value
    return response


class ConsistencyMiddleware:
    """Opens a ``ConsistencyContext`` (level ``session``) for each request; code whose reads
    honour ``X-Consistency`` takes the requested level into it
    (``consistency.api.HonoursConsistency``), so a header this request has no use for is never
    an error. After the view: saves the session's positions, reports ``X-Served-By`` and
    ``X-Consistency`` when a routed read served the request, and the headers contributed
    through ``consistency.context.response_header_set``. Must run inside ``SessionMiddleware``
    so that a browser session's change is saved (a system check says so)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        with consistency_context() as context:
            return _finish(self.get_response(request), context)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        with consistency_context() as context:
            response = await self.get_response(request)
            return await sync_to_async(_finish)(response, context)
