"""Fault switches: named, typed, staff-controlled ways to break the service on purpose.

Apps register the switches they honour (``fault_register`` in ``AppConfig.ready``). Values live
in the ``default`` database so every process (web workers, Celery workers) sees the same
switches; each process caches them for ``CACHE_SECONDS``, so a change takes effect everywhere
within that bound. A switch whose effect lives outside the process (e.g. the replica's apply
delay) carries an ``apply`` hook, run every time the switch is set (never skipped because the
stored value already matches: the outside state may have been lost since, e.g. by a restart),
and a ``read_in_force`` callable: ``faults_in_force`` reports what it reads, the state really
in force, rather than the stored value. Faults slow, fail or kill steps; they never skip a
step's checks, so they cannot bypass an invariant.
"""

from __future__ import annotations

import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from core.errors import DomainError

CACHE_SECONDS = 0.5


class FaultValueInvalid(DomainError):
    code = "fault_value_invalid"
    title = "Invalid fault switch value"


class FaultUnknown(DomainError):
    code = "fault_unknown"
    title = "Unknown fault switch"


@dataclass(frozen=True)
class FaultSpec:
    """``kind``: ``probability`` (0..1), ``milliseconds`` (0..max_value), ``flag`` (bool) or
    ``choices`` (a list drawn from ``choices``). ``apply(value)`` makes an outside effect so;
    ``read_in_force()`` reads it back (None when it cannot tell)."""

    name: str
    kind: str
    default: Any
    description: str
    max_value: int = 60_000
    choices: tuple[str, ...] = ()
    apply: Callable[[Any], None] | None = field(default=None, compare=False)
    read_in_force: Callable[[], Any] | None = field(default=None, compare=False)

    def validate(self, value: Any) -> Any:
        if self.kind == "probability":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise FaultValueInvalid(f"{self.name} must be a number from 0 to 1")
            if not math.isfinite(value) or not 0 <= value <= 1:
                raise FaultValueInvalid(f"{self.name} must be a number from 0 to 1")
            return float(value)
        if self.kind == "milliseconds":
            if isinstance(value, bool) or not isinstance(value, int):
                raise FaultValueInvalid(f"{self.name} must be an integer number of milliseconds")
            if not 0 <= value <= self.max_value:
                raise FaultValueInvalid(f"{self.name} must be from 0 to {self.max_value} ms")
            return value
        if self.kind == "flag":
            if not isinstance(value, bool):
                raise FaultValueInvalid(f"{self.name} must be true or false")
            return value
        if self.kind == "choices":
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise FaultValueInvalid(f"{self.name} must be a list of names")
            unknown = sorted(set(value) - set(self.choices))
            if unknown:
                raise FaultValueInvalid(
                    f"{self.name}: unknown {', '.join(unknown)}", allowed=list(self.choices)
                )
            return sorted(set(value))
        raise FaultValueInvalid(f"{self.name} has an unknown kind {self.kind!r}")


_registry: dict[str, FaultSpec] = {}
_cache_lock = threading.Lock()
_cache: dict[str, Any] = {}
_cache_loaded_at = -math.inf


def fault_register(spec: FaultSpec) -> None:
    _registry[spec.name] = spec


def fault_specs() -> dict[str, FaultSpec]:
    return dict(_registry)


def faults_get(*, fresh: bool = False) -> dict[str, Any]:
    """Every registered switch's current value (defaults where never set)."""
    global _cache_loaded_at  # noqa: PLW0603 - the per-process cache of switch values
    now = time.monotonic()
    with _cache_lock:
        if not fresh and now - _cache_loaded_at < CACHE_SECONDS:
            return dict(_cache)
    from core.models import FaultSwitch

    stored = dict(FaultSwitch.objects.using("default").values_list("name", "value"))
    values = {name: stored.get(name, spec.default) for name, spec in _registry.items()}
    with _cache_lock:
        _cache.clear()
        _cache.update(values)
        _cache_loaded_at = now
    return values


def faults_in_force() -> dict[str, Any]:
    """Every switch's value as really in force: the stored value, except for switches that
    can read their outside effect back (``read_in_force``), which report what they read. For
    reports (the API, metrics); a switch honoured in-process reads ``faults_get``."""
    values = faults_get(fresh=True)
    for name, spec in _registry.items():
        if spec.read_in_force is not None:
            in_force = spec.read_in_force()
            if in_force is not None:
                values[name] = in_force
    return values


def fault_value(name: str) -> Any:
    return faults_get()[name]


def faults_set(*, values: dict[str, Any], actor: str) -> dict[str, Any]:
    """Validate and store switch values, run the ``apply`` hook of every switch given (even
    one whose stored value is unchanged), return all stored values."""
    from core.models import FaultSwitch

    unknown = sorted(set(values) - set(_registry))
    if unknown:
        raise FaultUnknown(f"no such fault switch: {', '.join(unknown)}", allowed=sorted(_registry))
    validated = {name: _registry[name].validate(value) for name, value in values.items()}
    for name, value in validated.items():
        hook = _registry[name].apply
        if hook is not None:
            hook(value)
    with transaction.atomic(using="default"):
        for name, value in validated.items():
            FaultSwitch.objects.using("default").update_or_create(
                name=name, defaults={"value": value, "updated_by": actor}
            )
    faults_cache_clear()
    return faults_get(fresh=True)


def faults_cache_clear() -> None:
    """Forget this process's cached values (the next read loads them)."""
    global _cache_loaded_at  # noqa: PLW0603
    with _cache_lock:
        _cache_loaded_at = -math.inf


def faults_reset(*, actor: str) -> dict[str, Any]:
    return faults_set(values={name: spec.default for name, spec in _registry.items()}, actor=actor)


def fault_roll(name: str) -> bool:
    """True with the probability held by switch ``name``."""
    probability = fault_value(name)
    return probability > 0 and random.random() < probability  # noqa: S311 - not security


def fault_sleep(name: str) -> None:
    delay_ms = fault_value(name)
    if delay_ms:
        time.sleep(delay_ms / 1000)


CRASH_POINTS_SWITCH = "crash_points"


def crash_point(name: str) -> None:
    """Kill this process on the spot (SIGKILL, no cleanup, no ack) when ``name`` is armed:
    the way to prove that a step survives a crash between its commit and what follows."""
    if name in fault_value(CRASH_POINTS_SWITCH):
        from core.metrics import faults_crashes_total

        faults_crashes_total.labels(point=name).inc()
        os.kill(os.getpid(), signal.SIGKILL)


def crash_points_register(*names: str) -> None:
    """Add crash point names to the ``crash_points`` switch's allowed choices."""
    existing = _registry.get(CRASH_POINTS_SWITCH)
    choices = tuple(sorted(set(existing.choices if existing else ()) | set(names)))
    fault_register(
        FaultSpec(
            name=CRASH_POINTS_SWITCH,
            kind="choices",
            default=[],
            description="Armed crash points: a process reaching one is killed with SIGKILL.",
            choices=choices,
        )
    )
