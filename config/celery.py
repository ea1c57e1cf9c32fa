"""The Celery app: Redis broker, at-least-once delivery (see CELERY_* in settings)."""

import os

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("statelab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect(weak=False, dispatch_uid="statelab-logging")
def use_django_logging(**_kwargs) -> None:
    """Workers and beat log through the settings' LOGGING (structured, with the request id;
    core.logs) instead of Celery's own handlers."""
    from django.conf import settings

    from core.logs import logging_apply

    logging_apply(settings.LOGGING)


@worker_init.connect
def expose_worker_metrics(**_kwargs) -> None:
    """Serve the worker's metrics on STATELAB_WORKER_METRICS_PORT (e.g. for docker compose,
    where web and worker do not share a PROMETHEUS_MULTIPROC_DIR)."""
    port = os.environ.get("STATELAB_WORKER_METRICS_PORT")
    if not port:
        return
    from prometheus_client import start_http_server

    from core.metrics import scrape_registry

    start_http_server(
        int(port),
        addr=os.environ.get("STATELAB_WORKER_METRICS_ADDR", "127.0.0.1"),
        registry=scrape_registry(),
    )


@task_prerun.connect(weak=False, dispatch_uid="statelab-close-old-connections-pre")
@task_postrun.connect(weak=False, dispatch_uid="statelab-close-old-connections-post")
def close_old_database_connections(**_kwargs) -> None:
    """With CELERY_DB_REUSE_MAX set, a worker keeps its connections across tasks; they follow
    Django's request rule instead: what is too old or broken is closed around every task."""
    from django.db import close_old_connections

    close_old_connections()
