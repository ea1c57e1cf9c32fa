from celery import shared_task

from sharding.maintenance import job_run


@shared_task(name="sharding.maintenance_job", ignore_result=True)
def maintenance_job(job: str):
    """One run of a maintenance job by name (beat runs each on its period; see
    ``sharding.maintenance``); a run while another of the same job is under way does nothing."""
    return job_run(job)
