"""Command line: ``python -m devstack up|down|status|env``."""

import argparse
import json
import shlex
import sys
import time

from devstack import config


def _print_env() -> int:
    skipped: set[str] = set()
    if config.postgres_given():
        skipped.update(config.POSTGRES_VARIABLES)
    if config.redis_given():
        skipped.update(config.REDIS_VARIABLES)
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
            if info.get("error"):
                details.append(info["error"])
            print(
                f"{name:<11}{'yes' if info['running'] else 'no':<9}{info['pid'] or '-'!s:<9}"
                f"{info['port']:<7}{'; '.join(details)}"
            )
    wanted = [info for info in status.values() if not info["given"]]
    return 0 if all(info["running"] for info in wanted) else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Embedded Postgres primary + streaming replica + Redis for local work.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start (or reuse) the stack")
    up.add_argument(
        "--replica-delay-ms",
        type=int,
        default=None,
        help=f"replica apply delay (default {config.REPLICA_DELAY_MS}, STATELAB_REPLICA_DELAY_MS)",
    )
    down = commands.add_parser("down", help="stop every process of the stack")
    down.add_argument("--purge", action="store_true", help="also delete the stack directory")
    status = commands.add_parser("status", help="show what runs; exit 3 if something is down")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    commands.add_parser("env", help="print `export` lines for the embedded stack's URLs")
    args = parser.parse_args(argv)

    if args.command == "env":
        return _print_env()

    from devstack.stack import StackError, default_stack

    overrides = {}
    if args.command == "up" and args.replica_delay_ms is not None:
        overrides["replica_delay_ms"] = args.replica_delay_ms
    stack = default_stack(**overrides)
    try:
        if args.command == "up":
            started = time.monotonic()
            stack.up()
            elapsed = time.monotonic() - started
            print(f"\nstack up in {elapsed:.1f}s  ({stack.base_dir})")
            if not stack.postgres_given:
                print(
                    f"  primary    {config.HOST}:{stack.pg_port}  "
                    f"databases: {', '.join(config.database_names(stack.shard_count).values())}"
                )
                print(
                    f"  replica_1  {config.HOST}:{stack.replica_port}  "
                    f"apply delay {stack.replica_delay_ms} ms"
                )
            if not stack.redis_given:
                print(f"  redis      {config.HOST}:{stack.redis_port}")
            print(f"  logs       {stack.log_dir}")
            print("  URLs       python -m devstack env")
            return 0
        if args.command == "down":
            stack.down(purge=args.purge)
            return 0
        return _print_status(stack.status(), args.json)
    except StackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
