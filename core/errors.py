"""One error format for every error response: RFC 9457 problem details plus a stable ``code``.

Domain code raises ``DomainError`` subclasses; DRF exceptions, Django's 400/403/404/500
handlers and the CSRF failure view all end up in ``problem_response``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://statelab.dev/problems/"


class DomainError(Exception):
    """An error a client can act on; subclasses fix ``code``, ``status`` and ``title``."""

    code = "error"
    status: int = status.HTTP_400_BAD_REQUEST
    title = "Request failed"

    def __init__(self, detail: str | None = None, **data: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.data = data


def problem_body(
    *, status_code: int, code: str, title: str, detail: str, instance: str = "", **extra: Any
) -> dict[str, Any]:
    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(
    request: HttpRequest | None, *, status_code: int, code: str, title: str, detail: str, **extra
) -> JsonResponse:
    """A problem document for views outside DRF (Django handlers, middleware, health)."""
    body = problem_body(
        status_code=status_code,
        code=code,
        title=title,
        detail=detail,
        instance=request.path if request is not None else "",
        **extra,
    )
    return JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


_DRF_CODES = {
    drf_exceptions.ValidationError: "validation_error",
    drf_exceptions.ParseError: "malformed_request",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "throttled",
}
_STATUS_CODES = {413: "request_too_large"}


def _drf_code(exc: drf_exceptions.APIException) -> str:
    explicit = getattr(exc, "problem_code", None)
    if explicit:
        return explicit
    for exception_class in type(exc).__mro__:
        if exception_class in _DRF_CODES:
            return _DRF_CODES[exception_class]
    return _STATUS_CODES.get(exc.status_code) or exc.default_code or "error"


def problem_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's ``EXCEPTION_HANDLER``: domain and DRF errors become problem documents.

    Anything else returns None, so Django's 500 handler answers (also a problem document).
    """
    request = context.get("request")
    instance = request.path if request is not None else ""
    if isinstance(exc, DomainError):
        body = problem_body(
            status_code=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            instance=instance,
            **exc.data,
        )
        return _problem(request, body, exc.status, headers={})

    if isinstance(exc, RequestDataTooBig):
        body = problem_body(
            status_code=413,
            code="request_too_large",
            title="Request Entity Too Large",
            detail=f"The body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
            instance=instance,
        )
        return _problem(request, body, 413, headers={})

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = _drf_code(exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, drf_exceptions.ValidationError):
        detail = "The request has invalid fields; see errors."
        extra["errors"] = (
            exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        )
    else:
        detail = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else str(exc)
    body = problem_body(
        status_code=response.status_code,
        code=code,
        title=response.status_text,
        detail=detail,
        instance=instance,
        **extra,
    )
    return _problem(request, body, response.status_code, headers=dict(response.headers))


def _problem(request, body: dict, status_code: int, headers: dict) -> Response:
    renderer = getattr(request, "accepted_renderer", None)
    content_type = PROBLEM_CONTENT_TYPE if renderer is None or renderer.format == "json" else None
    headers.pop("Content-Type", None)
    return Response(body, status=status_code, headers=headers, content_type=content_type)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(
        request,
        status_code=400,
        code="bad_request",
        title="Bad Request",
        detail="The request could not be understood.",
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(
        request,
        status_code=403,
        code="permission_denied",
        title="Forbidden",
        detail="You do not have permission to perform this action.",
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(
        request,
        status_code=404,
        code="not_found",
        title="Not Found",
        detail=f"Nothing is found at {request.path}.",
    )


def server_error(request: HttpRequest) -> JsonResponse:
    return problem_response(
        request,
        status_code=500,
        code="server_error",
        title="Internal Server Error",
        detail="The server failed to handle the request; it has been logged.",
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    return problem_response(
        request,
        status_code=403,
        code="csrf_failed",
        title="Forbidden",
        detail=f"CSRF verification failed: {reason}" if reason else "CSRF verification failed.",
    )
