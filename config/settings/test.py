"""``make test``: the same real services as ``local``, tuned for a fast suite.

``STATELAB_TEST_RUN_ID`` gives a run its own test databases and cache prefix, so that two
suites can share one stack (e.g. a developer's and CI's, or parallel sessions).
"""

from config.settings import env
from config.settings.base import *  # noqa: F403
from config.settings.base import CACHES, DATABASES, REPLICA_ALIASES

RUN_ID = env.get_str("STATELAB_TEST_RUN_ID", "")
_suffix = f"_{RUN_ID}" if RUN_ID else ""

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES["default"]["KEY_PREFIX"] = f"statelab-test{_suffix}"
for _alias, _database in DATABASES.items():
    if _alias not in REPLICA_ALIASES:
        _database["TEST"] = {"NAME": f"test_{_database['NAME']}{_suffix}"}
STATIC_ROOT = None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
