"""OpenAPI: what every operation shares, added by drf-spectacular postprocessing hooks so that
views need not repeat it: the error responses as RFC 9457 problem documents (an operation that
documents a status itself keeps its own description), and the response headers every answer
carries (``X-Request-ID``; ``Retry-After`` on a 429). Headers of a few operations only are
documented by their views with ``response_header``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from core.errors import PROBLEM_CONTENT_TYPE
from core.request_id import HEADER as REQUEST_ID_HEADER

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable and machine-readable.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True},
    },
    "required": ["type", "title", "status", "detail", "code"],
    "additionalProperties": True,
}

_ALWAYS = {
    "400": "Invalid request (validation_error, malformed_request, nul_character, ...)",
    "401": "Not authenticated",
    "403": "Permission denied",
    "404": "Not found (also another user's object)",
    "405": "Method not allowed",
    "406": "Not acceptable",
    "413": "Request body too large",
    "415": "Unsupported media type",
    "429": "Throttled; see Retry-After",
}
_WITH_BODY = {"post", "put", "patch"}


def add_problem_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    reference = {"$ref": "#/components/schemas/Problem"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, description in _ALWAYS.items():
                if status in {"413", "415"} and method not in _WITH_BODY:
                    continue
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {PROBLEM_CONTENT_TYPE: {"schema": reference}},
                    },
                )
            for status, response in responses.items():
                if status.startswith(("4", "5")) and "content" not in response:
                    response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": reference}}
    return result


HEADER_COMPONENTS = {
    REQUEST_ID_HEADER: {
        "description": (
            "The request's id: the caller's X-Request-ID when it is 1-64 letters, digits or "
            "._:- (starting with a letter or digit), else a new one. Every log line of the "
            "request, of the tasks it caused and of the saga steps after it carries it."
        ),
        "schema": {"type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]*$"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    },
}
# Response headers every response of a status carries ("*": every status).
_HEADERS_BY_STATUS = {"*": [REQUEST_ID_HEADER], "429": ["Retry-After"]}


def add_response_headers(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("headers", {}).update(HEADER_COMPONENTS)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                for name in _HEADERS_BY_STATUS["*"] + _HEADERS_BY_STATUS.get(status, []):
                    headers.setdefault(name, {"$ref": f"#/components/headers/{name}"})
    return result


def response_header(
    name: str, description: str, *, statuses: tuple[int, ...] = (200,)
) -> OpenApiParameter:
    """A response header of one operation, for ``extend_schema(parameters=[...])``."""
    return OpenApiParameter(
        name,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=list(statuses),
        description=description,
    )
