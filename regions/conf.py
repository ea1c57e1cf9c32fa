"""The regions' configuration, read from Django settings (REGION_URLS, REGION_LINKS_URL,
REGIONS): region names in order, their URLs, the link proxy, the limits of the API."""

from __future__ import annotations

import hashlib
import socket
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psycopg
from django.conf import settings

REGION_NAMES = ("r1", "r2", "r3")
KINDS = ("lww", "mv", "counter", "gcounter", "orset", "doc")


@dataclass(frozen=True)
class RegionAddress:
    name: str
    host: str
    port: int
    user: str
    password: str
    database: str

    def conninfo(self, *, host: str | None = None, port: int | None = None) -> str:
        """A libpq connection string (another host and port: the same server through a link)."""
        parts = {
            "host": host or self.host,
            "port": port or self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.database,
            "connect_timeout": 5,
        }
        return " ".join(f"{name}={_quote(str(value))}" for name, value in parts.items())


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _address(name: str, url: str) -> RegionAddress:
    parts = urlsplit(url)
    return RegionAddress(
        name=name,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.lstrip("/")),
    )


def region_addresses() -> dict[str, RegionAddress]:
    """r1, r2, r3 -> where each region's database is (REGION_URLS, in that order)."""
    urls = list(settings.REGION_URLS)
    if len(urls) != len(REGION_NAMES):
        raise ValueError(f"REGION_URLS names {len(urls)} regions; the regions app needs 3")
    return {name: _address(name, url) for name, url in zip(REGION_NAMES, urls, strict=True)}


def links_endpoint() -> tuple[str, int] | None:
    """(host, control port) of the link proxy, None when the links are direct (unmanaged)."""
    url = settings.REGION_LINKS_URL
    if not url:
        return None
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 0


def option(name: str):
    return settings.REGIONS[name]


def context_key() -> bytes:
    """The HMAC key of the causal contexts this service issues (from SECRET_KEY)."""
    return hashlib.sha256(b"statelab-regions-context\0" + settings.SECRET_KEY.encode()).digest()


_PROBE_TTL_S = 5.0
_probed: dict[str, tuple[float, bool]] = {}


def regions_configured() -> bool:
    """True when REGION_URLS is given, or the embedded regions run and hold the configured
    database (r1 answers a connection to it): the embedded regions are an optional group, not
    started by a plain `devstack up`. The embedded answer is kept a few seconds."""
    if settings.REGION_URLS_GIVEN:
        return True
    first = region_addresses()[REGION_NAMES[0]]
    cached = _probed.get(first.conninfo())
    if cached is not None and time.monotonic() - cached[0] < _PROBE_TTL_S:
        return cached[1]
    try:
        with socket.create_connection((first.host, first.port), timeout=0.2):
            pass
        with psycopg.connect(first.conninfo(), connect_timeout=1):
            answer = True
    except (OSError, psycopg.Error):
        answer = False
    _probed[first.conninfo()] = (time.monotonic(), answer)
    return answer
