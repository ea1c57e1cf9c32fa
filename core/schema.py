"""OpenAPI: every operation documents its error responses as RFC 9457 problem documents.

A drf-spectacular postprocessing hook, so views need not repeat the same six responses; an
operation that documents a status itself keeps its own description.
"""

from __future__ import annotations

from typing import Any

from core.errors import PROBLEM_CONTENT_TYPE

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
