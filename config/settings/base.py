"""Settings shared by every purpose. Every value comes from ``config.settings.env``."""

from __future__ import annotations

from pathlib import Path

from config.settings import env
from core import logs

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEV_SECRET_KEY = "dev-only-insecure-key-for-the-embedded-stack-never-use-in-production-0000"  # noqa: S105 - refused by production settings
DEV_DEMO_PASSWORD = "statelab-demo"  # noqa: S105 - refused by production settings

SECRET_KEY = env.get_str("DJANGO_SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env.get_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env.get_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.get_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
DEMO_PASSWORD = env.get_str("STATELAB_DEMO_PASSWORD", DEV_DEMO_PASSWORD)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "core",
    "consistency",
    "accounts",
    "ledger",
    "audit",
    "profiles",
    "sharding",
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.ProblemDetailsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases (architecture section 2): one URL per alias --------------------------------------
CONN_MAX_AGE = env.get_int("DB_CONN_MAX_AGE", 60)
REPLICA_URLS = env.service_urls("REPLICA_URLS")
SHARD_URLS = env.service_urls("SHARD_URLS")
if len(SHARD_URLS) < 4:
    raise env.BadSettingValue(f"SHARD_URLS names {len(SHARD_URLS)} shards; at least 4 are needed")

REPLICA_ALIASES = [f"replica_{number}" for number in range(1, len(REPLICA_URLS) + 1)]
SHARD_ALIASES = [f"shard_{number}" for number in range(len(SHARD_URLS))]


def _replica(url: str) -> dict:
    # In tests the replica serves the primary's test database, which reaches it by replication.
    # No health check per request: a read that fails on a replica fails over to the primary and
    # takes the replica out of rotation (consistency.pool), so the check would only add a round
    # trip to every routed read.
    return {
        **env.database_from_url(url, conn_max_age=CONN_MAX_AGE),
        "CONN_HEALTH_CHECKS": False,
        "TEST": {"MIRROR": "default"},
    }


DATABASES = {
    "default": env.database_from_url(env.service_url("DATABASE_URL"), conn_max_age=CONN_MAX_AGE),
    **{alias: _replica(url) for alias, url in zip(REPLICA_ALIASES, REPLICA_URLS, strict=True)},
    "accounts": env.database_from_url(
        env.service_url("ACCOUNTS_DATABASE_URL"), conn_max_age=CONN_MAX_AGE
    ),
    "ledger": env.database_from_url(
        env.service_url("LEDGER_DATABASE_URL"), conn_max_age=CONN_MAX_AGE
    ),
    **{
        alias: env.database_from_url(url, conn_max_age=CONN_MAX_AGE)
        for alias, url in zip(SHARD_ALIASES, SHARD_URLS, strict=True)
    },
}
DATABASE_ROUTERS = ["config.routers.AppDatabaseRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache and Celery broker ----------------------------------------------------------
REDIS_URL = env.service_url("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.get_str("STATELAB_CACHE_PREFIX", "statelab"),
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}

REDIS_SOCKET_TIMEOUT_S = 0.5
# Callers that can do without Redis (core.redis.guarded_redis_call): shorter timeout, and
# Redis is skipped this long after a failure.
REDIS_GUARDED_TIMEOUT_S = 0.1
REDIS_BREAKER_OPEN_S = 1.0
# Reverse proxies in front of the web tier that append to X-Forwarded-For (core.net): 0 means
# the connection's address is the client's, and the header is ignored.
STATELAB_TRUSTED_PROXIES = env.get_int("STATELAB_TRUSTED_PROXIES", 0)
STATELAB_THROTTLE_RATES = {
    "auth": env.get_str("STATELAB_THROTTLE_AUTH", "30/min"),
    "transfers": env.get_str("STATELAB_THROTTLE_TRANSFERS", "600/min"),
}

CELERY_BROKER_URL = env.service_url("CELERY_BROKER_URL")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Batching consumers (core.consumers) gather messages the worker has reserved: each pool
# process may hold this many unacknowledged messages, enough for a batch or two of each.
CELERY_WORKER_PREFETCH_MULTIPLIER = env.get_int("STATELAB_CELERY_PREFETCH_MULTIPLIER", 128)
# A batch is handed to the pool at this many messages, or this long after its first message
# (core.consumers): a lone message waits no longer than the window.
CONSUMER_BATCH_MAX = env.get_int("STATELAB_CONSUMER_BATCH_MAX", 100)
CONSUMER_BATCH_WINDOW_S = env.get_int("STATELAB_CONSUMER_BATCH_WINDOW_MS", 5) / 1000
CELERY_TASK_TIME_LIMIT = env.get_int("STATELAB_TASK_TIME_LIMIT", 60)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 10
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
# Celery's Django fixup closes every database connection before and after each task unless
# this is set: a saga step would pay two or three new Postgres connections (with SCRAM auth).
# Connections are kept instead, and Django's own rule (CONN_MAX_AGE, unusable connections)
# applies around each task (config.celery closes old connections on the task signals).
CELERY_DB_REUSE_MAX = env.get_int("STATELAB_CELERY_DB_REUSE_MAX", 1000)
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_TIMEZONE = "UTC"

# --- Auth, sessions, i18n, static --------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_ENGINE = "django.contrib.sessions.backends.db"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
CSRF_FAILURE_VIEW = "core.errors.csrf_failure"
DATA_UPLOAD_MAX_MEMORY_SIZE = env.get_int("STATELAB_MAX_BODY_BYTES", 256 * 1024)

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's TokenAuthentication, reading the token's consistency positions in its query.
        "consistency.authentication.TokenWithPositionsAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.problem_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # DRF's own reading of X-Forwarded-For (BaseThrottle.get_ident) agrees with core.net.
    "NUM_PROXIES": STATELAB_TRUSTED_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "statelab API",
    "DESCRIPTION": (
        "Consistency patterns on real Postgres and Redis: a money-transfer saga, "
        "session-consistent reads over streaming replicas, sharding with hot-key spreading. "
        "Every error is an RFC 9457 problem document with a stable `code`."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.add_problem_responses",
        "core.schema.add_response_headers",
    ],
}

# --- Metrics, logging -------------------------------------------------------------------------
PROMETHEUS_EXPORT_MIGRATIONS = False
# /metrics (core.metrics.metrics_access_allowed): public here; production settings turn this
# off, and then a scrape needs the bearer token, an allowed address or a logged-in session.
METRICS_PUBLIC = True
METRICS_TOKEN = env.get_str("STATELAB_METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env.get_networks("STATELAB_METRICS_ALLOWED_NETWORKS", [])
REPLICA_PROBE_TIMEOUT_S = 1.0
# Every line structured, with the request id (core.logs, core.request_id): "json" (production's
# default) or "console" (human-readable, the default of make run and the suites).
LOG_FORMAT = env.get_choice("STATELAB_LOG_FORMAT", "console", logs.FORMATS)
LOG_LEVEL = env.get_str("STATELAB_LOG_LEVEL", "INFO")
LOGGING = logs.logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)

# --- accounts / ledger: the transfer saga ------------------------------------------------------
# Longest retry countdown of a saga task; the at-least-once check (core.checks) requires the
# broker's visibility timeout to exceed it plus CELERY_TASK_TIME_LIMIT.
STATELAB_TASK_MAX_COUNTDOWN_S = env.get_int("STATELAB_TASK_MAX_COUNTDOWN_S", 30)
OUTBOX_PUBLISH_ON_COMMIT = env.get_bool("STATELAB_OUTBOX_PUBLISH_ON_COMMIT", True)
SAGA_STUCK_AFTER_S = env.get_int("STATELAB_SAGA_STUCK_AFTER_S", 30)
# Deposits older than this whose journal entry is missing are left to reconciliation.
DEPOSIT_WATCH_WINDOW_S = env.get_int("STATELAB_DEPOSIT_WATCH_WINDOW_S", 24 * 3600)
# Bounds of the one transaction of an idempotent request (core.idempotency): past them the
# request answers 503 database_timeout having done nothing.
IDEMPOTENCY_LOCK_TIMEOUT_S = env.get_int("STATELAB_IDEMPOTENCY_LOCK_TIMEOUT_MS", 5000) / 1000
IDEMPOTENCY_STATEMENT_TIMEOUT_S = (
    env.get_int("STATELAB_IDEMPOTENCY_STATEMENT_TIMEOUT_MS", 15000) / 1000
)
IDEMPOTENCY_KEY_TTL_S = max(env.get_int("STATELAB_IDEMPOTENCY_KEY_TTL_S", 48 * 3600), 24 * 3600)
# How long a transfer naming an account the ledger has not heard of yet waits for the account's
# event before answering 404 (ledger.directory: the lag of the ledger's read model of accounts).
LEDGER_ACCOUNT_WAIT_S = env.get_int("STATELAB_LEDGER_ACCOUNT_WAIT_MS", 2000) / 1000
CELERY_BEAT_SCHEDULE.update(
    {
        "outbox-sweep": {"task": "core.outbox_sweep", "schedule": 1.0, "options": {"expires": 5}},
        "saga-watchdog": {
            "task": "ledger.saga_watchdog",
            "schedule": 5.0,
            "options": {"expires": 10},
        },
        "deposit-watchdog": {
            "task": "accounts.deposit_watchdog",
            "schedule": 5.0,
            "options": {"expires": 10},
        },
        "idempotency-keys-purge": {
            "task": "ledger.idempotency_keys_purge",
            "schedule": 3600.0,
            "options": {"expires": 600},
        },
    }
)

# --- consistency: session consistency over replicas (the consistency app) -------------------
# Its middleware opens a per-request context inside SessionMiddleware; its router decides reads
# of CONSISTENCY_ROUTED_APPS only. Django lets no app register either: listed here, checked by
# the app's system check (consistency.checks).
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "consistency.middleware.ConsistencyMiddleware",
)
DATABASE_ROUTERS = ["consistency.routing.ConsistencyRouter", *DATABASE_ROUTERS]
CONSISTENCY_ROUTED_APPS = {"profiles"}
CONSISTENCY_POSITIONS_MAX_AGE_S = env.get_int("STATELAB_POSITIONS_MAX_AGE_MS", 10) / 1000
# A snapshot this old still routes a read whose position a replica had already replayed in it.
CONSISTENCY_HEALTH_MAX_AGE_S = env.get_int("STATELAB_REPLICA_HEALTH_MAX_AGE_MS", 250) / 1000
CONSISTENCY_MAX_STALENESS_S = env.get_int("STATELAB_REPLICA_MAX_STALENESS_MS", 5000) / 1000
CONSISTENCY_DOWN_RETRY_S = 1.0
# Positions (consistency.models.SessionPosition) not raised for this long are purged.
CONSISTENCY_POSITIONS_TTL_S = 24 * 3600
CELERY_BEAT_SCHEDULE["consistency-positions-purge"] = {
    "task": "consistency.positions_purge",
    "schedule": 3600.0,
    "options": {"expires": 600},
}

# --- profiles: write-through cache --------------------------------------------------------------
PROFILES_CACHE_TTL_S = env.get_int("STATELAB_PROFILES_CACHE_TTL_S", 300)
PROFILES_CACHE_LEASE_MS = 2000
PROFILES_CACHE_WAIT_S = 0.25
# A miss read from a replica fills the cache only if the replica is at most this stale.
PROFILES_CACHE_FILL_MAX_STALENESS_S = 1.0
PROFILES_CHANGE_FEED_ENABLED = env.get_bool("STATELAB_PROFILES_CHANGE_FEED", True)

# --- sharding ---------------------------------------------------------------------------------
INSTALLED_APPS += ["sharding.control"]  # the control plane (bucket map, hot keys) on default
SHARDING = {
    "buckets": 1024,
    "slots": env.get_int("SHARDING_SLOTS", 4),
    "spreading": env.get_bool("SHARDING_SPREADING", True),
    "hot_rate": float(env.get_int("SHARDING_HOT_RATE", 500)),
    "hot_share": env.get_int("SHARDING_HOT_SHARE_PERCENT", 20) / 100,
    "hot_min_total_rate": float(env.get_int("SHARDING_HOT_MIN_TOTAL_RATE", 25)),
    "hot_sustain_s": env.get_int("SHARDING_HOT_SUSTAIN_MS", 2000) / 1000,
    "cool_ratio": 0.5,
    "cool_sustain_s": env.get_int("SHARDING_COOL_SUSTAIN_MS", 3000) / 1000,
    "half_life_s": env.get_int("SHARDING_HALF_LIFE_MS", 2000) / 1000,
    "tracked_keys": 64,
    "merged_cache_s": env.get_int("SHARDING_MERGED_CACHE_MS", 1000) / 1000,
    "key_lease_s": env.get_int("SHARDING_KEY_LEASE_MS", 30_000) / 1000,
    "map_check_s": 1.0,
    # A process re-reads the map version from the database at least this often, whatever
    # Redis says; a bucket move waits this plus map_in_flight_s before deleting the source.
    "map_max_age_s": env.get_int("SHARDING_MAP_MAX_AGE_MS", 2000) / 1000,
    "map_in_flight_s": 1.0,
    "shard_timeout_s": env.get_int("SHARDING_SHARD_TIMEOUT_MS", 2000) / 1000,
    "prefix": env.get_str("SHARDING_REDIS_PREFIX", "sharding"),
}
# Off the request path (sharding.maintenance): promotion, demotion and folds, fold bookkeeping.
SHARDING_MAINTENANCE_PERIODS_S = {"promote": 0.5, "tick": 1.0, "purge": 60.0}
CELERY_BEAT_SCHEDULE.update(
    {
        f"sharding-{job}": {
            "task": "sharding.maintenance_job",
            "schedule": period_s,
            "args": [job],
            "options": {"expires": max(5.0, period_s)},
        }
        for job, period_s in SHARDING_MAINTENANCE_PERIODS_S.items()
    }
)

# --- ha: the Patroni cluster and the state machine on etcd -------------------------------------
INSTALLED_APPS += ["ha"]
# Each Patroni member's REST API (the embedded cluster's unless DATABASE_URL points elsewhere)
# and etcd's members (v3 JSON gateway).
PATRONI_URLS = env.endpoint_urls("STATELAB_PATRONI_URLS", embedded_unless="DATABASE_URL")
PATRONI_CREDENTIALS = (
    env.get_str("STATELAB_PATRONI_USER", "statelab"),
    env.get_str("STATELAB_PATRONI_PASSWORD", "statelab"),
)
ETCD_URLS = env.endpoint_urls("STATELAB_ETCD_URLS")

# --- lab ---------------------------------------------------------------------------------------
INSTALLED_APPS += ["lab"]  # the State Lab page at /lab/ (reads the public API and /metrics)

# --- quorum: Dynamo-style coordinator over storage nodes (architecture section 10) ----------------
# The nodes are Postgres servers reached by URL (embedded: through the stack's link proxy), not
# Django databases: the app owns their schema (manage.py quorum_setup) and its connections.
INSTALLED_APPS += ["quorum"]
QUORUM_NODE_URLS = env.service_urls("QUORUM_NODE_URLS")
if len(QUORUM_NODE_URLS) < 4:
    raise env.BadSettingValue(
        f"QUORUM_NODE_URLS names {len(QUORUM_NODE_URLS)} nodes; at least 4 are needed"
    )
QUORUM = {
    # processes: the embedded stack's node servers are stopped, frozen and started for real;
    # proxy: only the link proxy's routes are switched (nodes given by QUORUM_NODE_URLS).
    "node_control": env.get_str(
        "QUORUM_NODE_CONTROL",
        "processes" if env.using_embedded("QUORUM_NODE_URLS") else "proxy",
    ),
    "proxy_control": env.get_str("QUORUM_PROXY_CONTROL", env.embedded_quorum_proxy_control()),
    "vnodes": env.get_int("QUORUM_VNODES", 64),
    "n": env.get_int("QUORUM_N", 3),
    "w": env.get_int("QUORUM_W", 2),
    "r": env.get_int("QUORUM_R", 2),
    "node_timeout_ms": env.get_int("QUORUM_NODE_TIMEOUT_MS", 1000),
    "request_timeout_ms": env.get_int("QUORUM_REQUEST_TIMEOUT_MS", 2500),
    "connect_timeout_s": 2,
    "pool_size": env.get_int("QUORUM_POOL_SIZE", 16),
    "suspect_ms": env.get_int("QUORUM_SUSPECT_MS", 2000),
    "max_value_bytes": env.get_int("QUORUM_MAX_VALUE_BYTES", 16 * 1024),
    "handoff_batch": 200,
}
CELERY_BEAT_SCHEDULE["quorum-hints-handoff"] = {
    "task": "quorum.hints_handoff",
    "schedule": 2.0,
    "options": {"expires": 10},
}

# --- regions (architecture section 9): three Postgres servers joined by logical replication -------
# Not Django databases: the app opens its own connections (regions.db), so that the test
# runner does not need the regions up for every run. REGION_LINKS_URL is the link proxy's
# control address (partitions, delays); unset with given REGION_URLS: direct links.
INSTALLED_APPS += ["regions"]
REGION_URLS = env.service_urls("REGION_URLS")
REGION_URLS_GIVEN = not env.using_embedded("REGION_URLS")
REGION_LINKS_URL = env.get_str("REGION_LINKS_URL") or (
    "" if REGION_URLS_GIVEN else env.service_url("REGION_LINKS_URL")
)
REGIONS = {
    "max_key_length": 200,
    "max_value_bytes": env.get_int("STATELAB_REGIONS_MAX_VALUE_BYTES", 16 * 1024),
    "max_state_bytes": 256 * 1024,
    "pool_size": env.get_int("STATELAB_REGIONS_POOL_SIZE", 4),
    "connect_timeout_s": 2.0,
    "statement_timeout_ms": 10_000,
    # /readyz: "auto" reports the regions when REGION_URLS is given or the embedded ones run.
    "readiness": "auto",
}
CELERY_BEAT_SCHEDULE["regions-anti-entropy"] = {
    "task": "regions.anti_entropy",
    "schedule": float(env.get_int("STATELAB_REGIONS_ANTI_ENTROPY_S", 15)),
    "options": {"expires": 30},
}
