"""``make run``: the embedded stack unless URLs are given, DEBUG on unless turned off."""

from config.settings import env
from config.settings.base import *  # noqa: F403

DEBUG = env.get_bool("DJANGO_DEBUG", True)
