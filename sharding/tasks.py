from celery import shared_task

from sharding.spreading import hot_keys_tick


@shared_task(name="sharding.hot_keys_tick", ignore_result=True)
def hot_keys_tick_task() -> dict[str, int]:
    """Demote cooled keys and finish interrupted folds (beat runs it every second)."""
    return hot_keys_tick()
