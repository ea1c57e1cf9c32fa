"""Production: every secret and service given by the environment, secure defaults enforced."""

from django.core.exceptions import ImproperlyConfigured

from config.settings import env
from config.settings.base import *  # noqa: F403
from config.settings.base import DEBUG, DEMO_PASSWORD, DEV_DEMO_PASSWORD, DEV_SECRET_KEY, SECRET_KEY
from core import logs

REQUIRED_VARIABLES = (
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DATABASE_URL",
    "REPLICA_URLS",
    "ACCOUNTS_DATABASE_URL",
    "LEDGER_DATABASE_URL",
    "SHARD_URLS",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "QUORUM_NODE_URLS",
)

missing = [name for name in REQUIRED_VARIABLES if env.using_embedded(name)]
if missing:
    raise ImproperlyConfigured(f"production settings need these variables: {', '.join(missing)}")
if DEBUG:
    raise ImproperlyConfigured("production settings refuse DJANGO_DEBUG=true")
if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be a unique random value of 50+ characters")
if DEMO_PASSWORD == DEV_DEMO_PASSWORD:
    raise ImproperlyConfigured(
        "production settings refuse the dev demo password: set STATELAB_DEMO_PASSWORD"
    )

LOG_FORMAT = env.get_choice("STATELAB_LOG_FORMAT", "json", logs.FORMATS)
LOGGING = logs.logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)  # noqa: F405

# /metrics: the bearer token STATELAB_METRICS_TOKEN, an address in
# STATELAB_METRICS_ALLOWED_NETWORKS, or a logged-in session; never anyone (core.metrics).
METRICS_PUBLIC = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.get_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env.get_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = env.get_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
