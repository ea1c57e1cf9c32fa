"""``make test``: the same real services as ``local``, tuned for a fast suite.

``STATELAB_TEST_RUN_ID`` gives a run its own test databases and cache prefix, so that two
suites can share one stack (e.g. a developer's and CI's, or parallel sessions).
"""

from config.settings import base, env
from config.settings.base import *  # noqa: F403
from config.settings.base import CACHES, DATABASES, QUORUM_NODE_URLS, REPLICA_ALIASES

RUN_ID = env.get_str("STATELAB_TEST_RUN_ID", "")
# Set for processes that a test starts (Celery workers, gunicorn): they must use the test
# databases that pytest-django created, not the development ones.
USE_TEST_DATABASES = env.get_bool("STATELAB_USE_TEST_DATABASES", False)
_suffix = f"_{RUN_ID}" if RUN_ID else ""

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES["default"]["KEY_PREFIX"] = f"statelab-test{_suffix}"
_test_primary_name = f"test_{DATABASES['default']['NAME']}{_suffix}"
for _alias, _database in DATABASES.items():
    _test_name = (
        _test_primary_name if _alias in REPLICA_ALIASES else f"test_{_database['NAME']}{_suffix}"
    )
    if _alias not in REPLICA_ALIASES:
        # No creation order between databases, so a run that needs only one can create it.
        _database["TEST"] = {"NAME": _test_name, "DEPENDENCIES": []}
    if USE_TEST_DATABASES:
        _database["NAME"] = _test_name
# The suite's own Celery queue: messages a test publishes and leaves behind (a transfer whose
# rows were flushed, say) must never reach a development worker, which would apply them to its
# own accounts of the same ids.
CELERY_TASK_DEFAULT_QUEUE = f"statelab-test{_suffix}"
STATIC_ROOT = None
# Suites log in and transfer far faster than people; the throttle tests set their own rates.
STATELAB_THROTTLE_RATES = {"auth": "100000/min", "transfers": "100000/min"}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Requests naming an account the ledger has never heard of (the suites' 404 cases, the fuzzer's
# random ids) wait this long for its event; the suites deliver every account's event as they
# open it (tests/saga/factories.py).
LEDGER_ACCOUNT_WAIT_S = 0.25
# The quorum store's nodes: this run's own database on each node (tests/quorum creates and
# drops it), for the test process and every process it starts.
QUORUM_NODE_URLS = [env.url_with_test_database(url, _suffix) for url in QUORUM_NODE_URLS]
# The regions suite's own database in every region (created and dropped by tests/regions).
REGION_URLS = [
    f"{url.rsplit('/', 1)[0]}/test_{url.rsplit('/', 1)[1]}{_suffix}" for url in base.REGION_URLS
]
# /readyz in tests reports the regions only where a test turns this on.
REGIONS = {**base.REGIONS, "readiness": False}
