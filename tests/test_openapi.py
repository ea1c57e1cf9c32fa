"""The OpenAPI schema says everything a client needs: an example per operation (request and
answer), true to the schema's own shapes; the response headers the service sets; the one
pagination envelope on every list."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

METHODS = {"get", "post", "put", "patch", "delete"}
LISTS = {
    ("/api/accounts/", "get"),
    ("/api/transfers/", "get"),
    ("/api/ledger/entries/", "get"),
    ("/api/sharding/events/", "get"),
}
OPERATION_HEADERS = {
    ("/api/transfers/", "post", "202"): {"Location", "Idempotent-Replayed"},
    ("/api/profiles/{user_id}/", "get", "200"): {"X-Served-By", "X-Consistency", "X-Cache"},
    ("/api/profiles/{user_id}/", "patch", "200"): {"X-Served-By", "X-Consistency", "X-Cache"},
    ("/api/profiles/me/", "get", "200"): {"X-Served-By", "X-Consistency", "X-Cache"},
    ("/api/profiles/me/", "patch", "200"): {"X-Served-By", "X-Consistency", "X-Cache"},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict[str, Any]:
    with django_db_blocker.unblock():
        client = APIClient()
        client.force_authenticate(UserFactory.build(pk=1))
        response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _operations(schema: dict) -> list[tuple[str, str, dict]]:
    return [
        (path, method, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in METHODS
    ]


def _deref(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        target: Any = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _success(operation: dict) -> tuple[str, dict]:
    return next(
        (status, response)
        for status, response in operation["responses"].items()
        if status.startswith("2")
    )


def _shape_errors(schema: dict, shape: dict, value: Any, where: str) -> list[str]:
    """Where an example's keys differ from its schema's: a key the schema does not name, or a
    required key missing (objects are followed down, lists through their first item)."""
    shape = _deref(schema, shape)
    if "allOf" in shape:
        shape = _deref(schema, shape["allOf"][0])
    errors = []
    if shape.get("type") == "object" and "properties" in shape and isinstance(value, dict):
        unknown = set(value) - set(shape["properties"])
        missing = set(shape.get("required", [])) - set(value)
        if unknown and not shape.get("additionalProperties"):
            errors.append(f"{where}: not in the schema: {sorted(unknown)}")
        if missing:
            errors.append(f"{where}: required but missing: {sorted(missing)}")
        for key in set(value) & set(shape["properties"]):
            errors += _shape_errors(schema, shape["properties"][key], value[key], f"{where}.{key}")
    elif shape.get("type") == "array" and isinstance(value, list) and value:
        errors += _shape_errors(schema, shape["items"], value[0], f"{where}[0]")
    return errors


def test_every_operation_has_an_example_of_its_answer(schema):
    missing = []
    for path, method, operation in _operations(schema):
        status, response = _success(operation)
        for media in response.get("content", {}).values():
            if not media.get("examples"):
                missing.append(f"{method.upper()} {path} {status}")
    assert missing == []


def test_every_operation_with_a_body_has_an_example_of_it(schema):
    missing = [
        f"{method.upper()} {path}"
        for path, method, operation in _operations(schema)
        for media in operation.get("requestBody", {}).get("content", {}).values()
        if not media.get("examples")
    ]
    assert missing == []


def test_every_example_has_the_shape_of_its_schema(schema):
    errors = []
    for path, method, operation in _operations(schema):
        bodies = [("request", operation.get("requestBody", {}))]
        bodies += [(status, response) for status, response in operation["responses"].items()]
        for label, body in bodies:
            for media in body.get("content", {}).values():
                for name, example in media.get("examples", {}).items():
                    where = f"{method.upper()} {path} {label} {name}"
                    errors += _shape_errors(schema, media["schema"], example["value"], where)
    assert errors == []


def test_every_response_documents_the_request_id(schema):
    undocumented = [
        f"{method.upper()} {path} {status}"
        for path, method, operation in _operations(schema)
        for status, response in operation["responses"].items()
        if "X-Request-ID" not in response.get("headers", {})
    ]
    assert undocumented == []


def test_every_throttled_answer_documents_retry_after(schema):
    throttled = [operation["responses"]["429"] for _path, _method, operation in _operations(schema)]
    assert throttled
    assert all("Retry-After" in response["headers"] for response in throttled)


@pytest.mark.parametrize(("path", "method", "status"), sorted(OPERATION_HEADERS))
def test_operations_document_the_headers_they_set(schema, path, method, status):
    headers = schema["paths"][path][method]["responses"][status]["headers"]

    assert OPERATION_HEADERS[path, method, status] <= set(headers)


@pytest.mark.parametrize(("path", "method"), sorted(LISTS))
def test_every_list_documents_its_cursor_pages(schema, path, method):
    operation = schema["paths"][path][method]
    _status, response = _success(operation)
    page = _deref(schema, response["content"]["application/json"]["schema"])

    assert {"cursor", "limit"} <= {parameter["name"] for parameter in operation["parameters"]}
    assert {"next", "previous", "results"} <= set(page["properties"])
