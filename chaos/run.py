"""``make chaos``: the mixed workload under a schedule of faults, with invariants checked at
every fault and at the end. Exits non-zero on any violation.

    python -m chaos [--duration 300] [--hold 3] [--settle 90] [--port 8500] [--skip FAULT]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
CONTENDED_ACCOUNTS_PER_USER = 2
CHAOS_USERS = ("alice", "bob")
OBSERVED_METRICS = (
    "statelab_inbox_redeliveries_ignored_total",
    "statelab_saga_redrives_total",
    "statelab_deposit_event_resends_total",
    "statelab_saga_compensations_total",
    "statelab_fault_crashes_total",
)


def _setup_accounts(base_url: str, tokens: dict[str, str]) -> tuple[dict[str, list[int]], str]:
    """Each chaos user gets CONTENDED_ACCOUNTS_PER_USER funded accounts, through the public API
    (opened by the user, funded by staff); existing ones are reused."""
    currency = "EUR"
    staff = {"Authorization": f"Token {tokens['admin']}"}
    owned: dict[str, list[int]] = {}
    for username in CHAOS_USERS:
        user = {"Authorization": f"Token {tokens[username]}"}
        listed = requests.get(f"{base_url}/api/accounts/", headers=user, timeout=10)
        listed.raise_for_status()
        accounts = [
            account["id"]
            for account in listed.json()["results"]
            if account["currency"] == currency and account["status"] == "active"
        ]
        while len(accounts) < CONTENDED_ACCOUNTS_PER_USER:
            created = requests.post(
                f"{base_url}/api/accounts/", json={"currency": currency}, headers=user, timeout=10
            )
            created.raise_for_status()
            deposit = requests.post(
                f"{base_url}/api/accounts/{created.json()['id']}/deposits/",
                json={"amount": "10000.00"},
                headers=staff,
                timeout=10,
            )
            deposit.raise_for_status()
            accounts.append(created.json()["id"])
        owned[username] = sorted(accounts)[:CONTENDED_ACCOUNTS_PER_USER]
    return owned, currency


def _cache_and_database() -> tuple[dict[int, str], dict[int, str]]:
    from profiles.cache import profile_cache_get
    from profiles.models import Profile
    from profiles.services import profile_data

    database, cache = {}, {}
    for profile in Profile.objects.using("default").all():
        database[profile.user_id] = json.dumps(profile_data(profile), sort_keys=True, default=str)
        cached = profile_cache_get(user_id=profile.user_id)
        if cached is not None:
            cache[profile.user_id] = json.dumps(cached.data, sort_keys=True, default=str)
    return database, cache


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="statelab chaos soak")
    parser.add_argument("--duration", type=float, default=300, help="seconds of faults")
    parser.add_argument("--hold", type=float, default=3, help="seconds each fault lasts")
    parser.add_argument("--settle", type=float, default=120, help="bound for quiescence")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("STATELAB_CHAOS_PORT", "8500"))
    )
    parser.add_argument("--clients", type=int, default=2, help="clients per kind and user")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "chaos")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="FAULT",
        help="leave this kind of fault out of the schedule (repeatable), e.g. pause_leader, "
        "whose new leader comes only after Patroni's ttl",
    )
    parser.add_argument(
        "--ha-mode",
        default="sync",
        help="the cluster's replication mode during the run (async is allowed to lose "
        "acknowledged writes when its leader dies; back to async at the end)",
    )
    return parser.parse_args(argv)


def _start_clients(service, history, stop: threading.Event, clients_per_kind: int, stamp: str):
    from django.contrib.auth import get_user_model

    from chaos.workload import CounterClient, ProfileClient, TransferClient

    owned, currency = _setup_accounts(service.base_url, service.tokens)
    every_account = sorted(account for accounts in owned.values() for account in accounts)
    user_ids = dict(
        get_user_model().objects.filter(username__in=CHAOS_USERS).values_list("username", "pk")
    )
    hot_key = f"chaos-hot-{stamp.lower()}"
    clients = []
    for username in CHAOS_USERS:
        other = next(name for name in CHAOS_USERS if name != username)
        common = {
            "base_url": service.base_url,
            "token": service.tokens[username],
            "history": history,
            "stop": stop,
        }
        for number in range(clients_per_kind):
            clients += [
                TransferClient(
                    f"{username}-transfer-{number}",
                    own_accounts=owned[username],
                    all_accounts=every_account,
                    currency=currency,
                    **common,
                ),
                ProfileClient(
                    f"{username}-profile-{number}",
                    user_id=user_ids[username],
                    other_user_id=user_ids[other],
                    **common,
                ),
                CounterClient(f"{username}-counter-{number}", key=hot_key, **common),
            ]
    for client in clients:
        client.start()
    return clients, hot_key


def _schedule(skipped: list[str]) -> tuple:
    from chaos.faults import SCHEDULE

    unknown = set(skipped) - {injector.__name__ for injector in SCHEDULE}
    if unknown:
        raise SystemExit(f"unknown fault kinds to skip: {', '.join(sorted(unknown))}")
    return tuple(injector for injector in SCHEDULE if injector.__name__ not in skipped)


def _run_schedule(context, history, duration_s: float, schedule: tuple) -> None:
    """Inject the faults of ``schedule`` in turn until ``duration_s`` is over and every kind
    has run at least once (on a loaded machine one pass can outlast the duration); check money
    after each."""
    from django.db import connections

    from chaos import checks

    deadline = time.monotonic() + duration_s
    step = 0
    while time.monotonic() < deadline or step < len(schedule):
        injector = schedule[step % len(schedule)]
        # A fault before this one may have killed the leader under this process's connections.
        connections.close_all()
        record = history.fault(injector.__name__)
        try:
            record.detail = injector(context)
        except Exception as error:
            record.detail = f"injection failed: {error}"
        record.healed = history.now()
        money = checks.money_conserved(context.service.base_url, context.staff_token, quiet=False)
        history.check(f"after {injector.__name__}", {"money_conserved": money})
        print(f"[{record.healed:7.1f}s] {injector.__name__}: {record.detail}", flush=True)
        step += 1
        time.sleep(1)


def _final_checks(service, history, settle_s: float) -> dict:
    from chaos import checks

    tokens = service.tokens
    deadline = time.monotonic() + settle_s
    final = {
        "transfers_terminal": checks.transfers_terminal(
            service.base_url, tokens, history, settle_s
        ),
    }
    final["money_and_journal"] = checks.books_settled(
        service.base_url, tokens["admin"], bound_s=max(deadline - time.monotonic(), 0)
    )
    final["read_your_writes_and_monotonic_reads"] = checks.reads_consistent(history)
    final["counters_exact"] = checks.counters_exact(service.base_url, tokens["alice"], history)
    database, cache = _cache_and_database()
    final["cache_matches_database"] = checks.cache_matches_database(database, cache)
    final["etcd_hashkv_equal"] = checks.etcd_consistent()
    history.check("end", final)
    return final


def _ha_mode_set(mode: str | None) -> str | None:
    """Put the cluster in ``mode`` when this service manages one (Patroni); the mode set."""
    from django.conf import settings

    from ha.services import ha_mode_set

    if mode is None or not settings.PATRONI_URLS:
        return None
    ha_mode_set(mode=mode)
    print(f"cluster mode: {mode}", flush=True)
    return mode


def main(argv: list[str] | None = None) -> int:
    options = _options(argv)
    schedule = _schedule(options.skip)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from chaos import checks
    from chaos.checker_history import checker_history_write
    from chaos.faults import FaultContext
    from chaos.history import History
    from chaos.report import print_table, summary
    from core.faults import faults_reset
    from devstack import config as devstack_config
    from devstack.stack import default_stack
    from loadtest.service import service_running

    if not os.environ.get("STATELAB_USE_TEST_DATABASES"):
        call_command("migrate_all", verbosity=0)
    call_command("seed_demo", verbosity=0)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = options.out / stamp
    out_dir.mkdir(parents=True)
    embedded = not (devstack_config.postgres_given() or devstack_config.redis_given())
    history = History()
    faults_reset(actor="chaos")
    ha_mode = _ha_mode_set(options.ha_mode)

    with service_running(options.port, out_dir, web_workers=3, celery_workers=2) as service:
        stop = threading.Event()
        clients, hot_key = _start_clients(service, history, stop, options.clients, stamp)
        context = FaultContext(
            service=service,
            stack=default_stack() if embedded else None,
            staff_token=service.tokens["admin"],
            hold_s=options.hold,
            rng=random.Random(options.seed),  # noqa: S311 - schedule shape, not security
            counter_key=hot_key,
        )
        _run_schedule(context, history, options.duration, schedule)
        stop.set()
        for client in clients:
            client.join(timeout=30)
        connections.close_all()  # the faults killed this process's connections too
        faults_reset(actor="chaos")
        for name, process in service.processes.items():
            if process.poll() is not None:
                service.start(name)
        print("faults stopped; waiting for quiescence", flush=True)
        final = _final_checks(service, history, options.settle)
        observed = checks.service_metric_totals(service.base_url, OBSERVED_METRICS)

    _ha_mode_set("async" if ha_mode else None)
    history.write(out_dir / "history.json")
    checker_history = checker_history_write(history, out_dir / "checker-history.jsonl")
    document = summary(history, final, observed)
    document["ha_mode"] = ha_mode
    document["skipped_faults"] = sorted(options.skip)
    (out_dir / "summary.json").write_text(json.dumps(document, indent=2, default=str))
    print_table(document)
    print(f"history: {out_dir / 'history.json'}")
    print(f"checker history: {checker_history} (python -m checker FILE --model all)")
    return 0 if document["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
