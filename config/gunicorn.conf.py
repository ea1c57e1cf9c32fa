"""Gunicorn: metrics from every worker are merged through PROMETHEUS_MULTIPROC_DIR."""

import os

bind = os.environ.get("STATELAB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("STATELAB_WEB_WORKERS", "3"))
worker_class = "gthread"
threads = int(os.environ.get("STATELAB_WEB_THREADS", "4"))
timeout = 30
graceful_timeout = 10
accesslog = os.environ.get("STATELAB_ACCESS_LOG") or None


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
