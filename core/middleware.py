"""Turns Django's own error pages (outside DRF and the admin) into problem documents."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse
from rest_framework.response import Response

from core.errors import PROBLEM_CONTENT_TYPE, problem_response
from core.request_id import (
    HEADER as REQUEST_ID_HEADER,
)
from core.request_id import (
    request_id_enter,
    request_id_new,
    request_id_parse,
)

_CODES = {
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


class RequestIdMiddleware:
    """First of the chain: makes the request's id current (the caller's ``X-Request-ID`` when
    it is acceptable, else a new one; ``core.request_id``), keeps it on ``request.request_id``
    and echoes it in the response, whatever the response is.

    The id stays current until the response is closed (``request_finished``), not only until
    the chain returns: Django logs a 4xx answer (``django.request``) after the middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_parse(request.headers.get(REQUEST_ID_HEADER)) or request_id_new()
        request.request_id = request_id  # type: ignore[attr-defined]
        request_id_enter(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


def request_id_clear(**_kwargs: object) -> None:
    """``request_finished``: the request is over; no id is current in this thread any more."""
    request_id_enter(None)


class ProblemDetailsMiddleware:
    """Django answers some errors itself, before or around a view: 405 from
    ``require_http_methods``, 400 for a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, and so on.
    Those come out as HTML or empty bodies; this rewrites them so every client-facing error has
    the one format. DRF responses already are problem documents; the admin keeps its HTML.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or isinstance(response, Response):
            return response
        if response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE):
            return response
        if request.path.startswith("/admin/"):
            return response
        status = HTTPStatus(response.status_code)
        problem = problem_response(
            request,
            status_code=status.value,
            code=_CODES.get(status.value, status.phrase.lower().replace(" ", "_")),
            title=status.phrase,
            detail=status.description,
        )
        if response.has_header("Allow"):
            problem["Allow"] = response["Allow"]
        return problem
