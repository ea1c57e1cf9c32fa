"""One log pipeline for every logger of a process: Django's, Celery's, gunicorn's, the apps'
stdlib loggers and structlog's. Each line carries the request id (``core.request_id``) when one
is current; ``json`` renders one JSON object per line (production, compose), ``console`` one
human-readable line (``make run``).

Importable without Django settings: gunicorn's configuration uses it before Django starts.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from celery import current_task

from core.request_id import HEADER, request_id_current

FORMATS = ("json", "console")
_ACCESS_LOGGER = "gunicorn.access"
_RESPONSE_REQUEST_ID = "{" + HEADER.lower() + "}o"

EventDict = MutableMapping[str, Any]


def add_request_id(_logger: Any, _method: str, event: EventDict) -> EventDict:
    if "request_id" not in event:
        request_id = request_id_current()
        if request_id is not None:
            event["request_id"] = request_id
    return event


def add_task(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """The Celery task a line was logged in, if any."""
    task = current_task._get_current_object()
    if task is not None and getattr(task.request, "id", None):
        event.setdefault("task", task.name)
        event.setdefault("task_id", task.request.id)
    return event


def gunicorn_access_fields(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """gunicorn's access line as fields (its arguments come as ``positional_args``, dropped from
    every other line): its request id is the response's ``X-Request-ID``, since the request is
    over and no id is current any more."""
    atoms = event.pop("positional_args", None)
    record = event.get("_record")
    if record is None or record.name != _ACCESS_LOGGER or not isinstance(atoms, Mapping):
        return event
    request_id = atoms[_RESPONSE_REQUEST_ID]
    if request_id != "-":
        event["request_id"] = request_id
    status = str(atoms["s"])
    event.update(
        method=atoms["m"],
        path=atoms["U"],
        status=int(status) if status.isdigit() else status,
        duration_ms=atoms["M"],
        client=atoms["h"],
    )
    return event


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_request_id,
        add_task,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _renderer(log_format: str) -> list[Any]:
    if log_format == "json":
        return [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    return [structlog.dev.ConsoleRenderer(colors=False)]


def formatter_config(log_format: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` formatter entry rendering every record in ``log_format``."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(FORMATS)}")
    return {
        "()": structlog.stdlib.ProcessorFormatter,
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderer(log_format),
        ],
        "foreign_pre_chain": [*_shared_processors(), gunicorn_access_fields],
        "pass_foreign_args": True,
    }


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The ``LOGGING`` of the settings (and gunicorn's ``logconfig_dict``): one handler on the
    root logger, on stderr; gunicorn's loggers propagate to it."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": formatter_config(log_format)},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structured"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own handlers (its console one under DEBUG) give way to the root's.
            "django": {"handlers": [], "propagate": True},
            "django.server": {"handlers": [], "propagate": True},
            "django.db.backends": {"level": "WARNING"},
            # gunicorn sets its own levels (INFO); these follow the settings' (a benchmark's
            # WARNING drops the access lines).
            "gunicorn.error": {"handlers": [], "propagate": True, "level": level},
            _ACCESS_LOGGER: {"handlers": [], "propagate": True, "level": level},
        },
    }


def structlog_configure() -> None:
    """structlog's own loggers (``structlog.get_logger()``) go through the same handler."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def logging_apply(config: dict[str, Any]) -> None:
    """Apply a configuration (Celery's ``setup_logging``: the worker keeps Django's logging)."""
    import logging.config

    logging.config.dictConfig(config)
    structlog_configure()
