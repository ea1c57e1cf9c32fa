"""System check: Celery must be configured for at-least-once delivery.

A configuration that acks before the work is done, or lets a killed worker's message be
dropped, loses work; one whose broker visibility timeout is shorter than a task can legitimately
stay unacknowledged (longest retry countdown plus the hard time limit) redelivers a message
that is still running, duplicating work that may not be idempotent. Both are errors, for the
app's settings and for every task's own options.

Left as Celery's default on purpose: ``task_acks_on_failure_or_timeout``. A task that fails for
good, or hits the hard time limit, is acknowledged rather than redelivered forever; the saga's
and the deposits' watchdogs find such a step by its missing effect and send it again.
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
    errors += _task_override_errors()
    return errors


def _task_override_errors() -> list[Error]:
    """A task may override the app's delivery options (``@shared_task(acks_late=False)``):
    every task of the project must keep them at least once."""
    from django.utils.module_loading import autodiscover_modules

    from config.celery import app

    # Each app's tasks module registers its tasks (what the worker's autodiscovery imports);
    # not app.loader.import_default_modules(), whose Django fixup runs the checks again.
    autodiscover_modules("tasks")
    unsafe = sorted(
        name
        for name, task in app.tasks.items()
        if not name.startswith("celery.") and not (task.acks_late and task.reject_on_worker_lost)
    )
    if not unsafe:
        return []
    return [
        Error(
            f"Tasks {', '.join(unsafe)} turn off acks_late or reject_on_worker_lost: a worker "
            "crash loses their messages.",
            hint="Remove the per-task override; the app's settings are at least once.",
            id="statelab.E007",
        )
    ]
