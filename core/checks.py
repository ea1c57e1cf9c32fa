"""System check: Celery must be configured for at-least-once delivery.

A configuration that acks before the work is done, or lets a killed worker's message be
dropped, loses work; one whose broker visibility timeout is shorter than a task can legitimately
stay unacknowledged (longest retry countdown plus the hard time limit) redelivers a message
that is still running, duplicating work that may not be idempotent. Both are errors.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register("celery")
def celery_at_least_once_check(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    if not getattr(settings, "CELERY_TASK_ACKS_LATE", False):
        errors.append(
            Error(
                "CELERY_TASK_ACKS_LATE is off: a message is acknowledged before its task runs, "
                "so a worker crash loses it.",
                hint="Set CELERY_TASK_ACKS_LATE = True.",
                id="statelab.E001",
            )
        )
    if not getattr(settings, "CELERY_TASK_REJECT_ON_WORKER_LOST", False):
        errors.append(
            Error(
                "CELERY_TASK_REJECT_ON_WORKER_LOST is off: a task whose worker process is killed "
                "is acknowledged as failed instead of redelivered.",
                hint="Set CELERY_TASK_REJECT_ON_WORKER_LOST = True.",
                id="statelab.E002",
            )
        )
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        errors.append(
            Error(
                "CELERY_TASK_ALWAYS_EAGER runs tasks inside the publisher: no broker, no retry, "
                "no redelivery.",
                hint="Leave CELERY_TASK_ALWAYS_EAGER unset outside unit tests of task bodies.",
                id="statelab.E003",
            )
        )
    serializer = getattr(settings, "CELERY_TASK_SERIALIZER", "json")
    accepted = set(getattr(settings, "CELERY_ACCEPT_CONTENT", ["json"]))
    if serializer != "json" or accepted != {"json"}:
        errors.append(
            Error(
                f"Celery serializer {serializer!r} / accepted {sorted(accepted)}: only JSON is "
                "allowed (pickle executes code from the broker; others differ between processes).",
                hint='Set CELERY_TASK_SERIALIZER = "json" and CELERY_ACCEPT_CONTENT = ["json"].',
                id="statelab.E004",
            )
        )
    visibility = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}).get(
        "visibility_timeout", 3600
    )
    time_limit = getattr(settings, "CELERY_TASK_TIME_LIMIT", None)
    longest_countdown = getattr(settings, "STATELAB_TASK_MAX_COUNTDOWN_S", 0)
    if time_limit is None:
        errors.append(
            Error(
                "CELERY_TASK_TIME_LIMIT is not set: a hung task holds its message forever and "
                "no visibility timeout can be proven safe.",
                hint="Set CELERY_TASK_TIME_LIMIT (seconds).",
                id="statelab.E005",
            )
        )
    elif visibility <= longest_countdown + time_limit:
        errors.append(
            Error(
                f"Broker visibility_timeout {visibility} s is not above the longest countdown "
                f"({longest_countdown} s) plus the task time limit ({time_limit} s): the broker "
                "would redeliver messages that are still waiting or running.",
                hint="Raise CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout'].",
                id="statelab.E006",
            )
        )
    return errors
