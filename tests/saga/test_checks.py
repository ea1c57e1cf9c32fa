"""The system check refuses Celery settings that could lose or silently duplicate work."""

import pytest

from core.checks import celery_at_least_once_check


def _ids() -> list[str]:
    return [error.id for error in celery_at_least_once_check()]


def test_the_projects_settings_pass_the_check():
    assert _ids() == []


@pytest.mark.parametrize(
    ("name", "value", "error_id"),
    [
        ("CELERY_TASK_ACKS_LATE", False, "statelab.E001"),
        ("CELERY_TASK_REJECT_ON_WORKER_LOST", False, "statelab.E002"),
        ("CELERY_TASK_ALWAYS_EAGER", True, "statelab.E003"),
        ("CELERY_TASK_SERIALIZER", "pickle", "statelab.E004"),
        ("CELERY_ACCEPT_CONTENT", ["json", "pickle"], "statelab.E004"),
        ("CELERY_TASK_TIME_LIMIT", None, "statelab.E005"),
        ("CELERY_BROKER_TRANSPORT_OPTIONS", {"visibility_timeout": 60}, "statelab.E006"),
        ("STATELAB_TASK_MAX_COUNTDOWN_S", 7200, "statelab.E006"),
    ],
)
def test_a_setting_that_could_lose_or_duplicate_work_is_an_error(settings, name, value, error_id):
    setattr(settings, name, value)

    assert _ids() == [error_id]


@pytest.fixture
def task_without_late_acks():
    from config.celery import app

    @app.task(name="tests.acks_early", acks_late=False, shared=False)
    def acks_early() -> None:
        """A consumer that would lose its message in a worker crash."""

    try:
        yield acks_early
    finally:
        app.tasks.unregister("tests.acks_early")


def test_a_task_that_turns_off_late_acks_is_an_error(task_without_late_acks):
    assert _ids() == ["statelab.E007"]


def test_the_check_runs_with_manage_py_check(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.CELERY_TASK_ACKS_LATE = False

    with pytest.raises(SystemCheckError, match=r"statelab\.E001"):
        call_command("check")
