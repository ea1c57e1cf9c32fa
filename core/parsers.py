"""The one JSON parser of the API: strict where Python's json module is lenient.

Every body is checked once here, so no view has to think of hostile JSON: a body over
``DATA_UPLOAD_MAX_MEMORY_SIZE`` (DRF reads the stream itself, past Django's check), too deep nesting
(would exhaust the recursion limit), NaN and Infinity (not JSON), integers outside a signed
64-bit range (would overflow a bigint column), NUL characters anywhere (Postgres text cannot
hold them). Each becomes a 400 problem document with its own code, before any row is written.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32
INT64_MAX = 2**63 - 1


class RequestTooLarge(APIException):
    status_code = 413
    default_code = "request_too_large"
    default_detail = "The request body is too large."


class HostileJSON(ParseError):
    default_code = "malformed_request"

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.problem_code = code


def _reject_constant(name: str) -> Any:
    raise HostileJSON(f"{name} is not a JSON number", code="invalid_number")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19:
        raise HostileJSON("integer out of range (signed 64-bit)", code="number_out_of_range")
    value = int(text)
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise HostileJSON("integer out of range (signed 64-bit)", code="number_out_of_range")
    return value


def _bounded_float(text: str) -> float:
    if len(text) > 64:
        raise HostileJSON("number too long", code="number_out_of_range")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise HostileJSON("number out of range", code="number_out_of_range")
    return value


def _check(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise HostileJSON(f"JSON nested deeper than {MAX_DEPTH} levels", code="too_deeply_nested")
    if isinstance(value, str):
        if "\x00" in value:
            raise HostileJSON("strings must not contain NUL characters", code="nul_character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth + 1)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            raise HostileJSON("the body is not valid UTF-8", code="invalid_encoding") from None
        try:
            data = json.loads(
                text,
                parse_constant=_reject_constant,
                parse_int=_bounded_int,
                parse_float=_bounded_float,
            )
        except HostileJSON:
            raise
        except RecursionError:
            raise HostileJSON(
                f"JSON nested deeper than {MAX_DEPTH} levels", code="too_deeply_nested"
            ) from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
        _check(data)
        return data
