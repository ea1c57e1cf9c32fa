"""Who is on the other end of a request: the client's address, from the connection unless a
configured number of trusted proxies is in front (``STATELAB_TRUSTED_PROXIES``, 0 by default).

``X-Forwarded-For`` is what the client (and each proxy after it) says: with no proxy in front
it is entirely the client's own words, so it must not decide identity (rate limits, allow
lists). Each trusted proxy appends the address it received the request from, so with N of them
the client is the N-th entry from the right; whatever stands left of it was sent by the client.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's IP address as the trusted part of the network saw it."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.STATELAB_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if len(hops) < proxies:
        # Fewer hops than proxies: the request did not come through all of them; the first
        # hop is still the client's own words, so the closest trusted address is the peer.
        return remote
    return hops[-proxies]


def address_in(address: str, networks: list[str]) -> bool:
    """Whether ``address`` belongs to one of ``networks`` (CIDR or single addresses)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)
