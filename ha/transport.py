"""JSON over HTTP to the cluster's members (Patroni's REST API, etcd's v3 gateway), stdlib
only. Two kinds of failure matter to callers, and are told apart: the request never reached
the member (``NotSent``: safe to try another), or it was sent and no answer came
(``NoAnswer``: it may have taken effect)."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit


class MemberError(Exception):
    """A member did not give an answer."""


class NotSent(MemberError):
    """The connection was refused or could not be made: the member got nothing."""


class NoAnswer(MemberError):
    """The request went out, no (complete) answer came back in time."""


def json_request(
    url: str,
    *,
    method: str = "GET",
    body: Any = None,
    timeout: float = 3.0,
    credentials: tuple[str, str] | None = None,
) -> tuple[int, Any]:
    """Send one request; (status, parsed JSON body or text). HTTP errors are answers too."""
    if urlsplit(url).scheme not in {"http", "https"}:
        raise ValueError(f"not an http(s) URL: {url!r}")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if credentials is not None:
        token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - scheme checked
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except urllib.error.URLError as error:
        if isinstance(error.reason, ConnectionRefusedError | socket.gaierror):
            raise NotSent(str(error.reason)) from None
        raise NoAnswer(str(error.reason)) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as error:
        raise NoAnswer(str(error) or type(error).__name__) from None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")
