"""Liveness and readiness: every dependency checked by name."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

from core.errors import problem_response
from core.replicas import replica_positions

CHECK_TIMEOUT_S = 2.0

_readiness_checks: list[Callable[[], dict[str, dict]]] = []


def readiness_check_register(check: Callable[[], dict[str, dict]]) -> None:
    """Add checks an app owns to ``/readyz`` (e.g. its replicas' positions): ``check()``
    returns results by name, each with ``ok``."""
    _readiness_checks.append(check)


def _timed(check: Callable[[], dict]) -> dict:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as error:
        result = {"ok": False, "error": str(error).strip().splitlines()[0] or type(error).__name__}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def check_database(alias: str) -> dict:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT current_database()")
            name = cursor.fetchone()[0]
    except DatabaseError:
        connections[alias].close()
        raise
    return {"ok": True, "database": name}


def check_redis(url: str) -> dict:
    client = redis.Redis.from_url(
        url, socket_connect_timeout=CHECK_TIMEOUT_S, socket_timeout=CHECK_TIMEOUT_S
    )
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


def check_broker(url: str) -> dict:
    with Connection(url, connect_timeout=CHECK_TIMEOUT_S) as connection:
        connection.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_S)
    return {"ok": True, "transport": url.split(":", 1)[0]}


def readiness_report() -> dict:
    """Every database alias, each replica's replay position and lag, Redis, the broker."""
    checks: dict[str, dict] = {}
    for alias in connections:
        if alias in settings.REPLICA_ALIASES:
            continue
        checks[f"database:{alias}"] = _timed(lambda alias=alias: check_database(alias))
    for alias, position in replica_positions().items():
        checks[f"database:{alias}"] = position.as_dict()
    for check in _readiness_checks:
        checks.update(check())
    checks["redis"] = _timed(lambda: check_redis(settings.REDIS_URL))
    checks["celery_broker"] = _timed(lambda: check_broker(settings.CELERY_BROKER_URL))
    down = sorted(name for name, result in checks.items() if not result["ok"])
    return {"status": "ok" if not down else "unavailable", "down": down, "checks": checks}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    report = readiness_report()
    if not report["down"]:
        return JsonResponse(report)
    return problem_response(
        request,
        status_code=503,
        code="dependency_down",
        title="Service Unavailable",
        detail="Down: " + ", ".join(report["down"]),
        down=report["down"],
        checks=report["checks"],
    )
