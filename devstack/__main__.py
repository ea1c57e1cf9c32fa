"""Command line: ``python -m devstack up|down|status|logs|env``."""

import argparse
import json
import shlex
import sys
import time
from typing import TYPE_CHECKING

from devstack import config

if TYPE_CHECKING:
    from devstack.stack import Stack


def _print_env() -> int:
    skipped: set[str] = set()
    if config.postgres_given():
        skipped.update(config.POSTGRES_VARIABLES)
        skipped.update(config.PATRONI_VARIABLES)
    if config.etcd_given():
        skipped.update(config.ETCD_VARIABLES)
    if config.redis_given():
        skipped.update(config.REDIS_VARIABLES)
    if config.quorum_given():
        skipped.update(config.QUORUM_VARIABLES)
    if config.regions_given():
        skipped.update(config.REGION_VARIABLES)
    for name, value in config.embedded_env().items():
        if name not in skipped:
            print(f"export {name}={shlex.quote(value)}")
    return 0


def _print_status(status: dict[str, dict], as_json: bool) -> int:
    if as_json:
        print(json.dumps(status, indent=2))
    else:
        print(f"{'component':<11}{'running':<9}{'pid':<9}{'port':<7}details")
        for name, info in status.items():
            details = []
            if info["given"]:
                details.append("given by URL variables (not managed here)")
            if info.get("replay_lsn") is not None:
                lag = info["lag_bytes"]
                details.append(
                    f"replay {info['replay_lsn']}, "
                    f"lag {'?' if lag is None else lag} bytes, "
                    f"apply delay {info['apply_delay']}"
                )
            if info.get("role"):
                details.append(
                    f"{info['role']} ({info['state']}), timeline {info['timeline']}, "
                    f"postmaster {info['postmaster_pid'] or '-'}"
                )
            if info.get("raft_term") is not None:
                leader = ", Raft leader" if info["is_leader"] else ""
                details.append(
                    f"Raft term {info['raft_term']}, index {info['raft_index']}, "
                    f"revision {info['revision']}{leader}"
                )
            if info.get("error"):
                details.append(info["error"])
            print(
                f"{name:<11}{'yes' if info['running'] else 'no':<9}{info['pid'] or '-'!s:<9}"
                f"{info['port']:<7}{'; '.join(details)}"
            )
    wanted = [info for info in status.values() if not info["given"]]
    return 0 if all(info["running"] for info in wanted) else 3


def _groups(values: list[str] | None) -> list[str] | None:
    """`--group a --group b,c` -> [a, b, c]; None when not given."""
    if not values:
        return None
    return [name for value in values for name in value.split(",") if name]


def _add_group_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--group",
        action="append",
        metavar="NAME",
        help=f"only this group of components (repeatable; 'all' for every group; default "
        f"{default})",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Embedded stack for local work: a Patroni cluster on etcd (group ha), Redis "
        "(group core), and the groups other patterns add.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start (or reuse) the stack")
    _add_group_option(up, "the default groups: core, ha")
    up.add_argument(
        "--replica-delay-ms",
        type=int,
        default=None,
        help=f"replica apply delay (default {config.REPLICA_DELAY_MS}, STATELAB_REPLICA_DELAY_MS)",
    )
    down = commands.add_parser("down", help="stop every process of the stack")
    _add_group_option(down, "every group")
    down.add_argument("--purge", action="store_true", help="also delete the stack's data")
    status = commands.add_parser("status", help="show what runs; exit 3 if something is down")
    _add_group_option(status, "the default groups: core, ha")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    logs = commands.add_parser("logs", help="print the end of one component's log")
    logs.add_argument("component", help="e.g. patroni_1, etcd_2, redis")
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many lines (50)")
    commands.add_parser("env", help="print `export` lines for the embedded stack's URLs")
    return parser


def _up(stack: "Stack", groups: list[str] | None) -> int:
    started = time.monotonic()
    stack.up(groups)
    elapsed = time.monotonic() - started
    print(f"\nstack up in {elapsed:.1f}s  ({stack.base_dir})")
    for component in stack.select(groups, with_dependencies=True):
        if not component.given:
            print(f"  {component.name:<11}{component.describe()}")
    print(f"  {'logs':<11}{stack.log_dir}")
    print(f"  {'URLs':<11}python -m devstack env")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "env":
        return _print_env()

    from devstack.errors import StackError
    from devstack.stack import default_stack

    overrides = {}
    if args.command == "up" and args.replica_delay_ms is not None:
        overrides["replica_delay_ms"] = args.replica_delay_ms
    stack = default_stack(**overrides)
    try:
        if args.command == "up":
            return _up(stack, _groups(args.group))
        if args.command == "down":
            stack.down(_groups(args.group), purge=args.purge)
            return 0
        if args.command == "logs":
            print(stack.component(args.component).logs(args.lines))
            return 0
        return _print_status(stack.status(_groups(args.group)), args.json)
    except StackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
