"""The nodes' states as they really are, and the staff switches that change them.

A state is read from what is in force, never from a stored flag:
- the link proxy's route for the node (its delay, jitter and cut), asked on its control port;
- with process control (the embedded stack, ``node_control = "processes"``): the node's
  postmaster, from its pid file and the kernel (running, stopped, or frozen by SIGSTOP).

Derived state: ``down`` when the server is stopped or frozen or its route is cut; ``slow`` when
its route has a delay or jitter; ``up`` otherwise. Switches:
- ``up``: start the server if it is stopped, thaw it if frozen, route without delay, not cut;
- ``down`` with ``how``: ``stop`` (the server is shut down: connections are refused at once),
  ``freeze`` (SIGSTOP of every process of the server: connections and queries hang until the
  client's timeouts) or ``cut`` (the route refuses and severs connections, a partition);
- ``slow``: running and reachable, every packet of the route held ``delay_ms`` plus a random
  ``0..jitter_ms`` (default: jitter equal to the delay; see devstack.linkproxy for why).
Without process control (docker compose, nodes given by QUORUM_NODE_URLS) only the route can
be changed: ``down`` is ``cut``, and stop/freeze are refused.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from devstack.errors import StackError
from devstack.linkproxy import MAX_DELAY_MS, LinkControl
from quorum.client import health
from quorum.conf import conf
from quorum.errors import QuorumNodeControlFailed, QuorumNodeStateInvalid, QuorumNodeUnknown

logger = logging.getLogger(__name__)

STATES = ("up", "down", "slow")
DOWN_HOWS = ("stop", "freeze", "cut")
COMPONENT_PREFIX = "quorum_"
PROXY_COMPONENT = "quorum_proxy"


@dataclass(frozen=True)
class NodeState:
    name: str
    state: str
    how: str | None
    delay_ms: int
    jitter_ms: int
    process: str
    pid: int | None
    route: dict[str, Any] | None
    control: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=1)
def _stack():
    from devstack.stack import default_stack

    return default_stack(echo=logger.info)


def _proxy() -> LinkControl:
    host, port = conf().proxy_control
    return LinkControl(port, host=host, timeout=1.0)


def _routes() -> dict[str, dict[str, Any]] | None:
    try:
        return _proxy().status()
    except (OSError, ValueError):
        return None


def _component(node: str):
    return _stack().component(f"{COMPONENT_PREFIX}{node}")


def _process(node: str) -> tuple[str, int | None]:
    if conf().node_control != "processes":
        return "unknown", None
    try:
        component = _component(node)
    except StackError:
        return "unknown", None
    pid = component.pid()
    if pid is None:
        return "stopped", None
    return ("frozen" if component.frozen() else "running"), pid


def _derive(name: str, process: str, pid: int | None, route: dict | None) -> NodeState:
    delay = int(route["delay_ms"]) if route else 0
    jitter = int(route.get("jitter_ms", 0)) if route else 0
    if process == "stopped":
        state, how = "down", "stop"
    elif process == "frozen":
        state, how = "down", "freeze"
    elif route is None:
        state, how = "down", "unreachable"
    elif route["cut"]:
        state, how = "down", "cut"
    elif delay or jitter:
        state, how = "slow", None
    else:
        state, how = "up", None
    return NodeState(name, state, how, delay, jitter, process, pid, route, conf().node_control)


def nodes_list() -> list[NodeState]:
    """Every node's state in force (see the module docstring)."""
    routes = _routes() or {}
    return [_derive(name, *_process(name), routes.get(name)) for name in conf().node_names]


def node_get(*, node: str) -> NodeState:
    if conf().node(node) is None:
        raise QuorumNodeUnknown(f"No node {node!r}; one of {', '.join(conf().node_names)}.")
    return _derive(node, *_process(node), (_routes() or {}).get(node))


def _validated(
    state: str, how: str | None, delay_ms: int | None, jitter_ms: int | None
) -> tuple[str | None, int, int]:
    if state not in STATES:
        raise QuorumNodeStateInvalid(f"state must be one of {', '.join(STATES)}.", field="state")
    for name, value in (("delay_ms", delay_ms), ("jitter_ms", jitter_ms)):
        if value is not None and not 0 <= value <= MAX_DELAY_MS:
            raise QuorumNodeStateInvalid(f"{name} must be in 0..{MAX_DELAY_MS}.", field=name)
    if state == "slow":
        if not delay_ms and not jitter_ms:
            raise QuorumNodeStateInvalid(
                "a slow node needs delay_ms (and optionally jitter_ms) above 0.", field="delay_ms"
            )
        delay = delay_ms or 0
        return None, delay, delay if jitter_ms is None else jitter_ms
    if delay_ms or jitter_ms:
        raise QuorumNodeStateInvalid(
            "delay_ms and jitter_ms go with state slow only.", field="delay_ms"
        )
    if state == "down":
        processes = conf().node_control == "processes"
        how = how or ("stop" if processes else "cut")
        if how not in DOWN_HOWS:
            raise QuorumNodeStateInvalid(f"how must be one of {', '.join(DOWN_HOWS)}.", field="how")
        if how != "cut" and not processes:
            raise QuorumNodeStateInvalid(
                "This deployment does not control the nodes' processes (they are given by "
                "QUORUM_NODE_URLS): a node goes down only by cutting its route (how=cut).",
                field="how",
            )
        return how, 0, 0
    if how is not None:
        raise QuorumNodeStateInvalid("how goes with state down only.", field="how")
    return None, 0, 0


def node_state_set(
    *,
    node: str,
    state: str,
    how: str | None = None,
    delay_ms: int | None = None,
    jitter_ms: int | None = None,
) -> NodeState:
    """Put `node` in `state` for real (see the module docstring); the state then in force."""
    if conf().node(node) is None:
        raise QuorumNodeUnknown(f"No node {node!r}; one of {', '.join(conf().node_names)}.")
    how, delay, jitter = _validated(state, how, delay_ms, jitter_ms)
    processes = conf().node_control == "processes"
    try:
        if processes:
            proxy = _stack().component(PROXY_COMPONENT)
            if proxy.pid() is None:
                proxy.up()
            component = _component(node)
            if state == "down" and how == "stop":
                component.down()
            elif state == "down" and how == "freeze":
                if component.pid() is None:
                    component.up()
                component.freeze()
            else:
                component.up()
        _proxy().set(node, delay_ms=delay, jitter_ms=jitter, cut=how == "cut")
    except (StackError, OSError, ValueError) as error:
        raise QuorumNodeControlFailed(f"{node}: {error}", node=node) from None
    if state == "up":
        health().forget_node(node)
    return node_get(node=node)
