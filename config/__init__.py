"""Project configuration: settings, URLs, Celery app, database routers."""

from config.celery import app as celery_app

__all__ = ["celery_app"]
