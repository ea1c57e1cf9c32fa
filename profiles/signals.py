"""Every user has a profile; Celery tasks carry the publisher's consistency context."""

from __future__ import annotations

from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from core.consistency import task_context_enter, task_context_exit, task_headers_add

_task_contexts: dict[str, Any] = {}


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="profiles.user_created")
def profile_for_new_user(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        from profiles.services import profile_ensure

        profile_ensure(user_id=instance.pk)


@before_task_publish.connect(dispatch_uid="profiles.consistency_publish")
def consistency_header(headers: dict | None = None, **kwargs) -> None:
    if headers is not None:
        task_headers_add(headers)


@task_prerun.connect(dispatch_uid="profiles.consistency_prerun")
def consistency_enter(task_id: str | None = None, task=None, **kwargs) -> None:
    if task is not None and task_id is not None:
        _task_contexts[task_id] = task_context_enter(task.request)


@task_postrun.connect(dispatch_uid="profiles.consistency_postrun")
def consistency_exit(task_id: str | None = None, **kwargs) -> None:
    if task_id is not None:
        task_context_exit(_task_contexts.pop(task_id, None))
