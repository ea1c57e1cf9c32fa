"""Everything the settings read from the environment, parsed in one place.

When a service URL is not given, the embedded stack's URL is used (see ``devstack``), so a
fresh clone runs with no configuration; production settings refuse that fallback.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import overload
from urllib.parse import parse_qsl, quote, unquote, urlsplit

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


# A comma starts a new URL only where a scheme follows: a multi-host URL has commas of its own.
_URL_SEPARATOR = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")


def split_urls(value: str) -> list[str]:
    """``"postgres://u@a:1,b:2/x,postgres://u@c/y"`` -> the two URLs."""
    return [url.strip() for url in _URL_SEPARATOR.split(value) if url.strip()]


def service_urls(name: str) -> list[str]:
    return split_urls(service_url(name))


def using_embedded(name: str) -> bool:
    return not os.environ.get(name)


def embedded_quorum_proxy_control() -> str:
    """host:port of the embedded stack's quorum link proxy control port."""
    return f"{devstack_config.HOST}:{devstack_config.QUORUM_PROXY_PORT}"


def endpoint_urls(name: str, *, embedded_unless: str | None = None) -> list[str]:
    """The URLs in ``name`` (comma-separated, no trailing slash); the embedded stack's when it
    is not set, unless ``embedded_unless`` is (a Postgres given by DATABASE_URL has no
    embedded Patroni to fall back on)."""
    value = os.environ.get(name)
    if value is None and not (embedded_unless and os.environ.get(embedded_unless)):
        value = _EMBEDDED.get(name, "")
    return [url.rstrip("/") for url in split_urls(value or "")]


TARGET_SESSION_ATTRS = {"any", "read-write", "read-only", "primary", "standby", "prefer-standby"}


def _host_and_port(item: str, url: str) -> tuple[str, str]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` -> (host, port)."""
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise BadSettingValue(f"bad host {item!r} in database URL {url!r}")
        port = rest[1:]
    else:
        host, _, port = item.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise BadSettingValue(f"bad port {port!r} in database URL {url!r}")
    return host or "127.0.0.1", port or "5432"


def _hosts_and_ports(netloc: str, url: str) -> tuple[str, str]:
    """The comma-separated hosts and ports of a (multi-host) URL, as libpq takes them."""
    hostlist = netloc.rpartition("@")[2]
    pairs = [_host_and_port(item, url) for item in hostlist.split(",")] if hostlist else []
    if not pairs:
        return "127.0.0.1", "5432"
    return ",".join(host for host, _ in pairs), ",".join(port for _, port in pairs)


def database_from_url(url: str, *, conn_max_age: int) -> dict:
    """A Django ``DATABASES`` entry from ``postgres://user:password@host:port/name?options``.

    Several hosts, as libpq's URLs have them, are accepted:
    ``postgres://u:p@h1:5432,h2:5432,h3:5432/name?target_session_attrs=read-write`` connects
    to the first host that is read-write (a cluster's leader, wherever it is now).
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise BadSettingValue(f"unsupported database URL scheme {parts.scheme!r} in {url!r}")
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise BadSettingValue(f"database URL {url!r} names no database")
    userinfo = parts.netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    host, port = _hosts_and_ports(parts.netloc, url)
    options: dict[str, str | int] = {"connect_timeout": 3}
    options.update(dict(parse_qsl(parts.query)))
    attrs = options.get("target_session_attrs")
    if attrs is not None and attrs not in TARGET_SESSION_ATTRS:
        raise BadSettingValue(f"target_session_attrs={attrs!r} in {url!r} is not one libpq knows")
    return {
        "ENGINE": "django_prometheus.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(user),
        "PASSWORD": unquote(password),
        "HOST": host,
        "PORT": port,
        "CONN_MAX_AGE": conn_max_age,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
    }


def url_with_test_database(url: str, suffix: str = "") -> str:
    """The same server's URL with its database renamed as Django names test databases
    (``test_<name><suffix>``)."""
    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    return parts._replace(path="/" + quote(f"test_{name}{suffix}")).geturl()


def database_hosts(entry: dict) -> list[tuple[str, int]]:
    """The (host, port) pairs of a ``DATABASES`` entry, one per member of a multi-host one."""
    hosts = str(entry["HOST"]).split(",")
    ports = str(entry["PORT"]).split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    return [(host, int(port)) for host, port in zip(hosts, ports, strict=True)]
