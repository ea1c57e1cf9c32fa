"""System check: the consistency middleware and router are listed, where they must be.

Django lets an app register neither: settings list them explicitly, and this check fails the
start when they are missing or misplaced (a context opened outside the session middleware
would not save a browser session's positions; a router listed after one that answers for
the routed apps would never be asked).
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error

MIDDLEWARE_PATH = "consistency.middleware.ConsistencyMiddleware"
ROUTER_PATH = "consistency.routing.ConsistencyRouter"
SESSION_MIDDLEWARE_PATH = "django.contrib.sessions.middleware.SessionMiddleware"


def consistency_wiring_check(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    middleware = list(settings.MIDDLEWARE)
    if MIDDLEWARE_PATH not in middleware:
        errors.append(
            Error(
                f"{MIDDLEWARE_PATH} is not in MIDDLEWARE: no request gets a consistency context.",
                hint="List it after SessionMiddleware and AuthenticationMiddleware.",
                id="consistency.E001",
            )
        )
    elif SESSION_MIDDLEWARE_PATH in middleware and middleware.index(
        MIDDLEWARE_PATH
    ) < middleware.index(SESSION_MIDDLEWARE_PATH):
        errors.append(
            Error(
                f"{MIDDLEWARE_PATH} runs outside SessionMiddleware.",
                hint="List it after SessionMiddleware.",
                id="consistency.E002",
            )
        )
    if list(settings.DATABASE_ROUTERS)[:1] != [ROUTER_PATH]:
        errors.append(
            Error(
                f"{ROUTER_PATH} is not the first of DATABASE_ROUTERS: reads of "
                "CONSISTENCY_ROUTED_APPS may be decided before it is asked.",
                hint="List it first; it answers only for CONSISTENCY_ROUTED_APPS.",
                id="consistency.E003",
            )
        )
    return errors
