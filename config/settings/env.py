"""Everything the settings read from the environment, parsed in one place.

When a service URL is not given, the embedded stack's URL is used (see ``devstack``), so a
fresh clone runs with no configuration; production settings refuse that fallback.
"""

from __future__ import annotations

import ipaddress
import os
from typing import overload
from urllib.parse import parse_qsl, unquote, urlsplit

from devstack import config as devstack_config

_EMBEDDED = devstack_config.embedded_env()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class BadSettingValue(ValueError):
    """A variable is set to something the settings cannot use."""


@overload
def get_str(name: str, default: str) -> str: ...
@overload
def get_str(name: str, default: None = None) -> str | None: ...
def get_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def get_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadSettingValue(f"{name}={value!r} is not a boolean (use true or false)")


def get_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadSettingValue(f"{name}={value!r} is not an integer") from None


def get_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    if value.strip().lower() not in choices:
        raise BadSettingValue(f"{name}={value!r}: use one of {', '.join(choices)}")
    return value.strip().lower()


def get_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def get_networks(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of IP networks (CIDR) or single addresses, each one checked."""
    networks = get_list(name, default)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise BadSettingValue(f"{name}: {network!r} is not an IP network") from None
    return networks


def service_url(name: str) -> str:
    """The URL in ``name``, else the embedded stack's URL for it."""
    return os.environ.get(name) or _EMBEDDED[name]


def service_urls(name: str) -> list[str]:
    return [url.strip() for url in service_url(name).split(",") if url.strip()]


def using_embedded(name: str) -> bool:
    return not os.environ.get(name)


def database_from_url(url: str, *, conn_max_age: int) -> dict:
    """A Django ``DATABASES`` entry from ``postgres://user:password@host:port/name?options``."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise BadSettingValue(f"unsupported database URL scheme {parts.scheme!r} in {url!r}")
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise BadSettingValue(f"database URL {url!r} names no database")
    options: dict[str, str | int] = {"connect_timeout": 3}
    options.update(dict(parse_qsl(parts.query)))
    return {
        "ENGINE": "django_prometheus.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
        "CONN_MAX_AGE": conn_max_age,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
    }
