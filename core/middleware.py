"""Turns Django's own error pages (outside DRF and the admin) into problem documents."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse
from rest_framework.response import Response

from core.errors import PROBLEM_CONTENT_TYPE, problem_response

_CODES = {
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


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
