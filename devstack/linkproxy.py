"""A TCP proxy with a switch per link: the network between the stack's servers, made visible.

One process serves several named routes (``r1->r2: 127.0.0.1:L -> 127.0.0.1:T``); each route
can be slowed (every chunk held ``delay_ms`` plus a random ``0..jitter_ms`` before it is
forwarded, in both directions, order kept within a connection) or cut (its open connections are
closed and new ones are reset, as a network partition seen by a client that gets a reset).
``--refuse-after-ms`` holds a new connection to a cut route that long before the reset (carried
as usual if the route heals meanwhile), as a peer that does not answer at once: a client that
fails within a millisecond is what the regions' Postgres mishandles (docs/patterns/regions.md).
The regions' logical-replication links and the quorum nodes go through it, so that a partition
or a slow node is a property of the network, not a flag the application reads.

Why jitter: a constant delay on every request to a node keeps that node's requests in the order
they were sent, so a read sent after a write still arrives after it; what lets a later request
overtake an earlier one on another connection is the variance of the delay, as on a real
congested link.

Run: ``python -m devstack.linkproxy --control-port P --route NAME=LISTEN:TARGET ...``, where
TARGET is a port on 127.0.0.1 or ``HOST:PORT``; ``--listen-host`` binds the routes and the
control port elsewhere than 127.0.0.1 (in a container: 0.0.0.0).
Control: one JSON object per line on the control port, one answer per line:
``{"op": "status"}`` and ``{"op": "set", "route": NAME, "delay_ms": N, "jitter_ms": N, "cut":
BOOL}`` (any field may be left out). State lives in the process only: whoever needs a setting
to outlive a restart of the proxy stores it and sets it again (see ``LinkControl``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
CHUNK_BYTES = 65536
MAX_DELAY_MS = 60_000


@dataclass
class Route:
    name: str
    listen_port: int
    target_port: int
    target_host: str = HOST
    delay_ms: int = 0
    jitter_ms: int = 0
    cut: bool = False
    refuse_after_ms: int = 0
    bytes_forwarded: int = 0
    connections_total: int = 0
    refused_total: int = 0
    open: set[asyncio.StreamWriter] = field(default_factory=set)

    def describe(self) -> dict[str, Any]:
        return {
            "listen": self.listen_port,
            "target": self.target_port
            if self.target_host == HOST
            else f"{self.target_host}:{self.target_port}",
            "delay_ms": self.delay_ms,
            "jitter_ms": self.jitter_ms,
            "cut": self.cut,
            "refuse_after_ms": self.refuse_after_ms,
            "open_connections": len(self.open) // 2,
            "connections_total": self.connections_total,
            "refused_total": self.refused_total,
            "bytes_forwarded": self.bytes_forwarded,
        }

    def hold_s(self) -> float:
        """How long the next chunk is held: the delay plus a uniform share of the jitter."""
        jitter = random.uniform(0, self.jitter_ms) if self.jitter_ms else 0.0  # noqa: S311
        return (self.delay_ms + jitter) / 1000

    def sever(self) -> None:
        for writer in list(self.open):
            writer.transport.abort()
        self.open.clear()


async def _pump(route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction; each chunk leaves no earlier than its arrival plus the route's delay
    (and jitter), and never before the chunk ahead of it."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    last_due = 0.0

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
            route.bytes_forwarded += len(data)

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(CHUNK_BYTES)
            last_due = max(last_due, time.monotonic() + route.hold_s())
            queue.put_nowait((last_due, data))
            if not data:
                break
        await sender
    finally:
        sender.cancel()


async def _serve(route: Route, client_reader, client_writer) -> None:
    if route.cut and route.refuse_after_ms:
        await asyncio.sleep(route.refuse_after_ms / 1000)
    if route.cut:
        route.refused_total += 1
        client_writer.transport.abort()
        return
    try:
        target_reader, target_writer = await asyncio.open_connection(
            route.target_host, route.target_port
        )
    except OSError:
        route.refused_total += 1
        client_writer.transport.abort()
        return
    route.connections_total += 1
    route.open.update((client_writer, target_writer))
    pumps = [
        asyncio.create_task(_pump(route, client_reader, target_writer)),
        asyncio.create_task(_pump(route, target_reader, client_writer)),
    ]
    try:
        await asyncio.gather(*pumps)
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        for task in pumps:
            task.cancel()
        for writer in (client_writer, target_writer):
            route.open.discard(writer)
            writer.transport.abort()


def _apply(routes: dict[str, Route], request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op == "status":
        return {"ok": True, "routes": {name: r.describe() for name, r in routes.items()}}
    if op != "set":
        return {"ok": False, "error": f"unknown op {op!r}"}
    route = routes.get(request.get("route"))
    if route is None:
        return {"ok": False, "error": f"unknown route {request.get('route')!r}"}
    delay = request.get("delay_ms", route.delay_ms)
    jitter = request.get("jitter_ms", route.jitter_ms)
    cut = request.get("cut", route.cut)
    for name, value in (("delay_ms", delay), ("jitter_ms", jitter)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DELAY_MS:
            return {"ok": False, "error": f"{name} must be an integer in 0..{MAX_DELAY_MS}"}
    if not isinstance(cut, bool):
        return {"ok": False, "error": "cut must be true or false"}
    route.delay_ms = delay
    route.jitter_ms = jitter
    if cut and not route.cut:
        route.sever()
    route.cut = cut
    return {"ok": True, "route": {route.name: route.describe()}}


async def _control(routes: dict[str, Route], reader, writer) -> None:
    try:
        while line := await reader.readline():
            try:
                request = json.loads(line)
                answer = (
                    _apply(routes, request)
                    if isinstance(request, dict)
                    else {"ok": False, "error": "a request is a JSON object"}
                )
            except ValueError as error:
                answer = {"ok": False, "error": f"not JSON: {error}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
    finally:
        writer.close()


async def serve(control_port: int, routes: dict[str, Route], host: str = HOST) -> None:
    servers = [
        await asyncio.start_server(
            lambda r, w, route=route: _serve(route, r, w), host, route.listen_port
        )
        for route in routes.values()
    ]
    servers.append(
        await asyncio.start_server(lambda r, w: _control(routes, r, w), host, control_port)
    )
    await asyncio.gather(*(server.serve_forever() for server in servers))


def parse_route(text: str) -> Route:
    """``NAME=LISTEN:TARGET_PORT`` or ``NAME=LISTEN:TARGET_HOST:TARGET_PORT`` -> Route."""
    name, _, ports = text.partition("=")
    listen, _, target = ports.partition(":")
    target_host, _, target_port = target.rpartition(":")
    if not name or not listen.isdigit() or not target_port.isdigit():
        raise argparse.ArgumentTypeError(
            f"a route is NAME=LISTEN_PORT:[TARGET_HOST:]TARGET_PORT, got {text!r}"
        )
    return Route(
        name=name,
        listen_port=int(listen),
        target_port=int(target_port),
        target_host=target_host or HOST,
    )


class LinkControl:
    """Client of a running proxy's control port."""

    def __init__(self, control_port: int, *, timeout: float = 2.0, host: str = HOST) -> None:
        self.control_port = control_port
        self.timeout = timeout
        self.host = host

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        address = (self.host, self.control_port)
        with socket.create_connection(address, timeout=self.timeout) as conn:
            conn.sendall(json.dumps(request).encode() + b"\n")
            answer = conn.makefile("rb").readline()
        reply = json.loads(answer)
        if not reply.get("ok"):
            raise ValueError(reply.get("error", "the proxy refused the request"))
        return reply

    def status(self) -> dict[str, dict[str, Any]]:
        """Route name -> its state (listen, target, delay_ms, cut, counters)."""
        return self._ask({"op": "status"})["routes"]

    def set(
        self,
        route: str,
        *,
        delay_ms: int | None = None,
        jitter_ms: int | None = None,
        cut: bool | None = None,
    ) -> dict:
        """Change a route; the answer is the route's state in force afterwards."""
        request: dict[str, Any] = {"op": "set", "route": route}
        if delay_ms is not None:
            request["delay_ms"] = delay_ms
        if jitter_ms is not None:
            request["jitter_ms"] = jitter_ms
        if cut is not None:
            request["cut"] = cut
        return self._ask(request)["route"][route]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.linkproxy", description=__doc__)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--listen-host", default=HOST, help=f"where to listen ({HOST})")
    parser.add_argument("--route", type=parse_route, action="append", default=[])
    parser.add_argument(
        "--refuse-after-ms",
        type=int,
        default=0,
        help="hold a new connection to a cut route this long before resetting it (0)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.refuse_after_ms <= MAX_DELAY_MS:
        parser.error(f"--refuse-after-ms must be in 0..{MAX_DELAY_MS}")
    for route in args.route:
        route.refuse_after_ms = args.refuse_after_ms
    routes = {route.name: route for route in args.route}
    if len(routes) != len(args.route):
        parser.error("route names must be unique")
    asyncio.run(serve(args.control_port, routes, args.listen_host))


if __name__ == "__main__":
    main()
