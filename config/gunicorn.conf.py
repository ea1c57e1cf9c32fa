"""Gunicorn: metrics from every worker are merged through PROMETHEUS_MULTIPROC_DIR; its own logs
(the access log included) go through the settings' LOGGING, so that they are structured like
every other line and the access line carries the request id (core.logs)."""

import os

bind = os.environ.get("STATELAB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("STATELAB_WEB_WORKERS", "3"))
worker_class = "gthread"
threads = int(os.environ.get("STATELAB_WEB_THREADS", "4"))
timeout = 30
graceful_timeout = 10
# With logconfig_dict set, gunicorn logs every request to "gunicorn.access" (no file of its own).
accesslog = None
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'


def _settings_logging() -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.conf import settings

    return settings.LOGGING


logconfig_dict = _settings_logging()


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
