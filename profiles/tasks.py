from celery import shared_task

from profiles.domain import PROFILE_CHANGE_RECORD_TASK
from profiles.services import profile_change_record


@shared_task(name=PROFILE_CHANGE_RECORD_TASK)
def profile_change_record_task(user_id: int) -> None:
    """Record the profile as a reader now sees it, with its publisher's write positions."""
    profile_change_record(user_id=user_id)
