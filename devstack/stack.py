"""The orchestrator: every registered group's components in one workspace, started and
stopped by group.

``Stack.up()`` starts the default groups (core: redis; ha: etcd_1..3, patroni_1..3),
``up(["single"])`` another group; components start in registration order, with what they depend on.
``down()`` stops everything, last registered first. A single component is reached by name:
``stack.component("replica_1").down()``.
"""

import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from devstack.components import Component
from devstack.config import StackConfig
from devstack.errors import StackError
from devstack.groups import GROUPS, Group
from devstack.workspace import MARKER_FILE, Workspace

ALL_GROUPS = "all"


class Stack:
    """One embedded stack living under ``config.base_dir``."""

    def __init__(
        self,
        config: StackConfig,
        *,
        honor_given_urls: bool = True,
        echo: Callable[[str], None] = print,
        groups: Mapping[str, Group] = GROUPS,
    ) -> None:
        self.config = config
        self.groups = dict(groups)
        self.workspace = Workspace(config.base_dir, honor_given_urls=honor_given_urls, echo=echo)
        self.components: list[Component] = []
        for registered in self.groups.values():
            for component in registered.build(self.workspace, config):
                component.group = registered.name
                self.components.append(component)
        names = [component.name for component in self.components]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"component names used twice: {', '.join(duplicates)}")

    @property
    def base_dir(self) -> Path:
        return self.workspace.base_dir

    @property
    def log_dir(self) -> Path:
        return self.workspace.log_dir

    def component(self, name: str) -> Component:
        for component in self.components:
            if component.name == name:
                return component
        known = ", ".join(component.name for component in self.components)
        raise StackError("stack", f"no component {name!r}; one of {known}")

    def select(
        self, groups: Iterable[str] | None = None, *, with_dependencies: bool = False
    ) -> list[Component]:
        """The components of `groups` (None: the default groups; "all": every group), in
        registration order; with what they depend on when `with_dependencies`."""
        wanted = self._group_names(groups)
        chosen = {c.name for c in self.components if c.group in wanted}
        if with_dependencies:
            pending = list(chosen)
            while pending:
                for needed in self.component(pending.pop()).depends_on:
                    if needed not in chosen:
                        chosen.add(needed)
                        pending.append(needed)
        return [c for c in self.components if c.name in chosen]

    def _group_names(self, groups: Iterable[str] | None) -> set[str]:
        if groups is None:
            return {name for name, registered in self.groups.items() if registered.default}
        names = set(groups)
        if ALL_GROUPS in names:
            return set(self.groups)
        unknown = sorted(names - set(self.groups))
        if unknown:
            raise StackError(
                "stack",
                f"no group {', '.join(map(repr, unknown))}; one of "
                f"{', '.join([*self.groups, ALL_GROUPS])}",
            )
        return names

    def up(self, groups: Iterable[str] | None = None) -> None:
        """Start whatever is not running; reuse whatever is. Safe to call repeatedly."""
        self.workspace.create()
        with self.workspace.lock():
            for component in self.select(groups, with_dependencies=True):
                component.up()

    def down(self, groups: Iterable[str] | None = None, *, purge: bool = False) -> None:
        """Stop the components of `groups` (None: every group), given by URLs or not.
        `purge` deletes their data too; for every group, the whole base directory."""
        if not self.base_dir.exists():
            self.workspace.echo(f"nothing to stop: {self.base_dir} does not exist")
            return
        everything = groups is None or ALL_GROUPS in set(groups)
        if purge and everything and not self.workspace.is_stack and any(self.base_dir.iterdir()):
            raise StackError(
                "stack",
                f"refusing to purge {self.base_dir}: it has no {MARKER_FILE} marker, so it "
                "may not be a devstack directory",
            )
        chosen = self.components if everything else self.select(groups)
        with self.workspace.lock():
            for component in reversed(chosen):
                if purge and not everything:
                    component.purge()
                else:
                    component.down()
            if purge and everything:
                shutil.rmtree(self.base_dir)
                self.workspace.echo(f"purged {self.base_dir}")

    def status(self, groups: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Per component of `groups` (None: the default groups): given, running, pid, port,
        and what the component adds (the replica's replay position, lag and apply delay)."""
        return {component.name: component.status() for component in self.select(groups)}


def default_stack(
    *,
    honor_given_urls: bool = True,
    echo: Callable[[str], None] = print,
    **overrides: Any,
) -> Stack:
    """The stack configured by devstack.config (STATELAB_* variables), with `overrides` of
    StackConfig's fields (e.g. ``replica_delay_ms=500``)."""
    return Stack(replace(StackConfig(), **overrides), honor_given_urls=honor_given_urls, echo=echo)
