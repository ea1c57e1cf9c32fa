"""Primary-backup and the replicated state machine, as histories for the consistency spectrum
(issue 14): registers written and read on the embedded cluster (etcd x3, Patroni x3) across
a leader's SIGKILL, recorded with the checker's Recorder.

Modes (one history file each, with ``ha-<mode>.faults.json`` beside it):

- ``async`` / ``sync``: the Patroni cluster in that replication mode (``ha.services``). One
  writer session per key upserts unique values on the leader (libpq multi-host,
  ``read-write``) and reads the key back there; one session reads every key on the leader;
  two sessions read every key on a standby (``target_session_attrs=standby``). A third of the
  way in, the leader's postmaster is SIGKILLed (``ha_leader_kill``, what the API's button
  does); Patroni promotes a standby and the old leader rejoins by ``pg_rewind``. A write
  acknowledged by the old leader and not yet on the promoted standby is lost there: in
  ``async`` that may happen (rarely: the window is the WAL not yet sent); ``sync`` waits for
  a standby's flush before acknowledging. Then the zombie (``_Zombie``): the new leader is
  frozen until another member leads, and a write sent to it meanwhile on a connection held
  to it is acknowledged when it resumes in ``async`` and then rewound away (the checker
  sees an acknowledged write that no later read returns); in ``sync`` it is never
  acknowledged.
- ``smr-etcd``: the same registers in the state machine on etcd (``ha.smr``): writes are
  ``set`` (a put through Raft), reads linearizable; the etcd leader is SIGKILLed a third of
  the way in and started again two seconds later. Writes and reads carry etcd's
  ``mod_revision`` as their ``version``.

Every operation has its invoke and its completion: ``ok`` (acknowledged, with the member
that served it as ``replica``), ``fail`` (refused: certainly not applied) or ``info`` (no
answer, or the connection died: it may have been applied). After the clients stop and the
cluster has settled (one leader, both standbys streaming on its timeline; for etcd, every
member at one revision), a final read of every key on each member, straight from that member
(``final``, ``replica`` = the member), says what each copy holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from checker import Recorder

SQL_MODES = ("async", "sync")
SMR_MODE = "smr-etcd"
MODES = (*SQL_MODES, SMR_MODE)
KEYS = 3
STANDBY_READERS = 2
PAUSE_S = 0.02
OP_TIMEOUT_S = 3.0
MIN_DURATION_S = 2.0
ETCD_RESTART_AFTER_S = 2.0
SCRATCH_DATABASE = "statelab_spectrum_ha"
TABLE = "ha_registers"


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


class _Faults:
    """What the fault schedule did and when (seconds from the start of the mode's run)."""

    def __init__(self) -> None:
        self.origin = time.monotonic()
        self.entries: list[dict[str, Any]] = []

    def note(self, fault: str, **details: Any) -> None:
        self.entries.append(
            {"fault": fault, "at_s": round(time.monotonic() - self.origin, 3), **details}
        )

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.entries, indent=2, default=str) + "\n")


def record(
    *, out_dir: Path, duration_s: float, modes: tuple[str, ...] = MODES, zombie: bool = True
) -> dict[str, Path]:
    """One history per mode, about ``duration_s`` of clients each (at least 2 s; at least a
    third of it after the fault), on the stack's cluster (which must run: ``python -m
    devstack up``); the cluster is left settled, in ``async`` mode. ``zombie=False`` leaves
    out the frozen leader of the SQL modes (it costs Patroni's ``ttl``, 20 s, per mode)."""
    _django()
    out_dir.mkdir(parents=True, exist_ok=True)
    duration_s = max(MIN_DURATION_S, duration_s)
    return {
        mode: (
            _smr_record(mode, out_dir=out_dir, duration_s=duration_s)
            if mode == SMR_MODE
            else _sql_record(mode, out_dir=out_dir, duration_s=duration_s, zombie=zombie)
        )
        for mode in modes
    }


def _remaining(duration_s: float, origin: float) -> float:
    """How long the clients go on after the fault: to the end of ``duration_s``, and at
    least a third of it (a slow failover must not leave the new leader without operations)."""
    return max(duration_s / 3, duration_s - (time.monotonic() - origin))


# ---- Postgres under Patroni ---------------------------------------------------------------


def _member_ports() -> dict[int, str]:
    from ha.patroni import patroni_client

    return {member.port: member.name for member in patroni_client().cluster()}


def _upsert(key: str, value: Any) -> tuple[str, tuple]:
    return (
        f"INSERT INTO {TABLE} (key, value) VALUES (%s, %s) "  # noqa: S608 - a constant table
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (key, value),
    )


def _select(key: str) -> tuple[str, tuple]:
    return f"SELECT value FROM {TABLE} WHERE key = %s", (key,)  # noqa: S608 - a constant table


class _SqlClients:
    """The writer and reader sessions, as coroutines of one event loop in a thread of their
    own; an operation without an answer in ``OP_TIMEOUT_S`` is ``info`` and its connection is
    dropped (a dead leader may answer nothing)."""

    def __init__(
        self,
        recorder: Recorder,
        conninfo: dict[str, Any],
        keys: list[str],
        *,
        also_read: tuple[str, ...] = (),
    ) -> None:
        self.recorder = recorder
        self.conninfo = conninfo
        self.keys = keys
        self.read_keys = [*keys, *also_read]
        self.members = _member_ports()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ha-spectrum", daemon=True)

    def start(self) -> _SqlClients:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=OP_TIMEOUT_S * 4 + 30)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        clients = [self._writer(key) for key in self.keys]
        clients.append(self._reader("leader-reader", "read-write"))
        clients += [
            self._reader(f"standby-reader-{number}", "standby")
            for number in range(1, STANDBY_READERS + 1)
        ]
        await asyncio.gather(*clients)

    async def _connect(self, target: str) -> Any:
        import psycopg

        try:
            return await asyncio.wait_for(
                psycopg.AsyncConnection.connect(
                    **{**self.conninfo, "target_session_attrs": target}, autocommit=True
                ),
                OP_TIMEOUT_S,
            )
        except (TimeoutError, psycopg.Error, OSError):
            return None

    async def _operation(self, conn: Any, pending: Any, statement: tuple[str, tuple]) -> bool:
        """Run one statement for ``pending`` and complete it; False when the connection is to
        be dropped."""
        import psycopg

        replica = self.members.get(conn.info.port, str(conn.info.port))
        try:
            cursor = await asyncio.wait_for(conn.execute(*statement), OP_TIMEOUT_S)
            row = await cursor.fetchone() if pending.f == "read" else None
        except TimeoutError:
            pending.info(error="timeout", replica=replica)
            return False
        except psycopg.OperationalError as error:
            pending.info(error=_line(error), replica=replica)
            return False
        except psycopg.Error as error:
            # refused by the server (e.g. a read-only transaction on a demoted member)
            pending.fail(error=_line(error), replica=replica)
            return False
        pending.ok(row[0] if row else None, replica=replica)
        return True

    async def _writer(self, key: str) -> None:
        session = self.recorder.session(f"writer-{key}")
        conn = None
        while not self._stop.is_set():
            if conn is None:
                conn = await self._connect("read-write")
                if conn is None:
                    await asyncio.sleep(0.05)
                    continue
            value = self.recorder.unique_value()
            alive = await self._operation(
                conn, session.invoke("write", key, value), _upsert(key, value)
            )
            if alive:
                alive = await self._operation(conn, session.invoke("read", key), _select(key))
            if not alive:
                await _abandon(conn)
                conn = None
            await asyncio.sleep(PAUSE_S)
        if conn is not None:
            await _abandon(conn)

    async def _reader(self, name: str, target: str) -> None:
        session = self.recorder.session(name)
        conn = None
        number = 0
        while not self._stop.is_set():
            if conn is None:
                conn = await self._connect(target)
                if conn is None:
                    await asyncio.sleep(0.05)
                    continue
            key = self.read_keys[number % len(self.read_keys)]
            number += 1
            if not await self._operation(conn, session.invoke("read", key), _select(key)):
                await _abandon(conn)
                conn = None
            await asyncio.sleep(PAUSE_S)
        if conn is not None:
            await _abandon(conn)


async def _abandon(conn: Any) -> None:
    """Drop a connection that may hang (a dead server never answers a clean close)."""
    with contextlib.suppress(Exception):
        conn.pgconn.finish()


def _line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _standbys_replayed(conninfo: dict[str, Any], timeout_s: float = 20.0) -> bool:
    """Until every standby has replayed the leader's current WAL position."""
    import psycopg

    from ha.patroni import patroni_client

    with psycopg.connect(**conninfo, autocommit=True) as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        behind = 0
        for member in patroni_client().cluster():
            if member.is_leader:
                continue
            direct = {**conninfo, "port": member.port, "target_session_attrs": "any"}
            with psycopg.connect(**direct, autocommit=True) as conn:
                replayed = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (str(target),)
                ).fetchone()[0]
            behind += not replayed
        if not behind:
            return True
        time.sleep(0.2)
    return False


def _sql_final_reads(recorder: Recorder, conninfo: dict[str, Any], keys: list[str]) -> None:
    """Each key read on each member, straight from it."""
    import psycopg

    for port, name in sorted(_member_ports().items()):
        session = recorder.session(f"final-{name}")
        direct = {**conninfo, "port": port, "target_session_attrs": "any"}
        with psycopg.connect(**direct, autocommit=True) as conn:
            for key in keys:
                with session.operation("read", key, final=True) as pending:
                    row = conn.execute(*_select(key)).fetchone()
                    pending.ok(row[0] if row else None, replica=name)


class _Zombie:
    """The frozen leader that comes back: a session writes its own key on the leader (over a
    connection to that server only), the leader is frozen (SIGSTOP of Patroni and every
    Postgres process) until another member leads, the session writes the key again over the
    same connection while it is frozen, and the old leader is resumed. Its backend commits
    that write before Patroni demotes the server: in ``async`` the commit is acknowledged and
    then undone by ``pg_rewind`` (an acknowledged write lost, which the final reads show);
    in the synchronous modes it waits for a synchronous standby that now follows another
    leader, and is ended by the demotion unacknowledged. Nobody else writes the key."""

    ANSWER_TIMEOUT_S = 60.0

    def __init__(self, recorder: Recorder, conninfo: dict[str, Any], key: str) -> None:
        self.recorder = recorder
        self.conninfo = conninfo
        self.key = key

    def run(self, faults: _Faults) -> None:
        import psycopg

        from devstack.stack import default_stack
        from loadtest.ha_bench import leader_name, new_leader

        old = leader_name()
        member = default_stack().component(old)
        session = self.recorder.session(f"zombie-{self.key}")
        direct = {**self.conninfo, "port": member.port, "target_session_attrs": "read-write"}
        held = psycopg.connect(**direct, autocommit=True)
        self._write(session, held, old)
        writer = threading.Thread(target=self._write, args=(session, held, old), daemon=True)
        member.pause()
        faults.note("pause_leader", member=old)
        try:
            leader, after_s = new_leader(old)
            faults.note("new_leader", member=leader, elected_after_s=round(after_s, 3))
            writer.start()
            time.sleep(0.5)
        finally:
            member.resume()
            faults.note("resume", member=old)
        if writer.is_alive() or writer.ident is not None:
            writer.join(timeout=self.ANSWER_TIMEOUT_S)
        with contextlib.suppress(Exception):
            held.pgconn.finish()

    def _write(self, session: Any, conn: Any, member: str) -> None:
        import psycopg

        value = self.recorder.unique_value()
        pending = session.invoke("write", self.key, value)
        try:
            conn.execute(*_upsert(self.key, value))
        except psycopg.Error as error:
            pending.info(error=_line(error), replica=member)
        else:
            pending.ok(replica=member)


def _sql_record(mode: str, *, out_dir: Path, duration_s: float, zombie: bool) -> Path:
    import psycopg

    from ha.services import ha_leader_kill, ha_mode_set
    from loadtest.ha_bench import cluster_settled, etcd_equal, new_leader, scratch_conninfo

    if not cluster_settled():
        raise RuntimeError("the cluster is not settled (one leader, two streaming standbys)")
    conninfo = scratch_conninfo(SCRATCH_DATABASE)
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (key text PRIMARY KEY, value bigint NOT NULL)")
    ha_mode_set(mode=mode)
    path = out_dir / f"ha-{mode}.jsonl"
    path.unlink(missing_ok=True)
    faults = _Faults()
    keys = [f"{mode}-k{number}" for number in range(1, KEYS + 1)]
    zombie_key = f"{mode}-zombie"
    with Recorder(path) as recorder:
        clients = _SqlClients(recorder, conninfo, keys, also_read=(zombie_key,)).start()
        try:
            time.sleep(duration_s / 3)
            killed = ha_leader_kill()
            faults.note("kill_leader", member=killed["leader"], postmaster=killed["postmaster_pid"])
            leader, after_s = new_leader(killed["leader"])
            faults.note("new_leader", member=leader, elected_after_s=round(after_s, 3))
            time.sleep(_remaining(duration_s, faults.origin))
            if zombie:
                cluster_settled()
                _Zombie(recorder, conninfo, zombie_key).run(faults)
                time.sleep(duration_s / 3)
        finally:
            clients.stop()
        faults.note("clients_stopped")
        settled = cluster_settled()
        replayed = settled and _standbys_replayed(conninfo)
        faults.note("settled", settled=settled, standbys_replayed=replayed)
        _sql_final_reads(recorder, conninfo, [*keys, zombie_key])
    faults.note("etcd_hashkv", equal=etcd_equal())
    faults.write(out_dir / f"ha-{mode}.faults.json")
    ha_mode_set(mode="async")
    return path


# ---- the state machine on etcd ------------------------------------------------------------


def _etcd_members() -> list[Any]:
    from devstack.components import EtcdMember
    from devstack.stack import default_stack

    return [c for c in default_stack().components if isinstance(c, EtcdMember)]


def _smr_client(
    recorder: Recorder,
    machine: Any,
    name: str,
    keys: list[str],
    *,
    writes: bool,
    members: dict[str, str],
    stop: threading.Event,
) -> None:
    """One session: (write a unique value, read it back) per round on its key, or reads of
    every key in turn. ``members``: etcd member URL -> name."""
    from ha.errors import SmrOutcomeUnknown, SmrUnavailable

    session = recorder.session(name)
    number = 0
    while not stop.is_set():
        key = keys[number % len(keys)]
        number += 1
        steps = [("write", recorder.unique_value()), ("read", None)] if writes else [("read", None)]
        for f, value in steps:
            pending = session.invoke(f, key, value)
            try:
                result = machine.set(key, value) if f == "write" else machine.read(key)
            except SmrUnavailable as error:  # no member took it: not applied
                pending.fail(error=error.code)
                time.sleep(0.05)
                break
            except SmrOutcomeUnknown as error:
                pending.info(error=error.code)
                break
            except Exception as error:  # anything else: the outcome is not known
                pending.info(error=type(error).__name__)
                break
            replica = members.get(result.member, result.member)
            pending.ok(result.value, replica=replica, version=result.mod_revision)
        time.sleep(PAUSE_S)


def _revisions_equal(timeout_s: float = 20.0) -> bool:
    """Until every etcd member reports the same store revision."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        revisions = {m.status_details(m.pid()).get("revision") for m in _etcd_members()}
        if len(revisions) == 1 and None not in revisions:
            return True
        time.sleep(0.2)
    return False


def _smr_record(mode: str, *, out_dir: Path, duration_s: float) -> Path:
    from ha.etcd import EtcdClient, etcd_client, hashkv_compare
    from ha.smr import SERIALIZABLE, StateMachine

    machine = StateMachine(etcd_client())
    path = out_dir / f"ha-{mode}.jsonl"
    path.unlink(missing_ok=True)
    faults = _Faults()
    run_id = f"spectrum-{time.monotonic_ns()}"
    keys = [f"{run_id}-k{number}" for number in range(1, KEYS + 1)]
    stop = threading.Event()
    members = {member.client_url: member.name for member in _etcd_members()}
    with Recorder(path) as recorder:
        sessions = [(f"writer-{key}", [key], True) for key in keys]
        sessions += [(f"reader-{n}", keys, False) for n in range(1, STANDBY_READERS + 2)]
        threads = [
            threading.Thread(
                target=_smr_client,
                args=(recorder, machine, name, session_keys),
                kwargs={"writes": writes, "members": members, "stop": stop},
                daemon=True,
            )
            for name, session_keys, writes in sessions
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(duration_s / 3)
            leader = next(m for m in _etcd_members() if m.status_details(m.pid()).get("is_leader"))
            faults.note("kill_etcd_leader", member=leader.name, pid=leader.kill())
            time.sleep(ETCD_RESTART_AFTER_S)
            leader.up()
            faults.note("restarted", member=leader.name)
            time.sleep(_remaining(duration_s, faults.origin))
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        faults.note("clients_stopped")
        faults.note("settled", revisions_equal=_revisions_equal())
        for member in _etcd_members():
            own = StateMachine(EtcdClient([member.client_url]))
            session = recorder.session(f"final-{member.name}")
            for key in keys:
                with session.operation("read", key, final=True) as pending:
                    result = own.read(key, consistency=SERIALIZABLE)
                    pending.ok(result.value, replica=member.name, version=result.mod_revision)
    faults.note("etcd_hashkv", equal=bool(hashkv_compare(etcd_client())["equal"]))
    faults.write(out_dir / f"ha-{mode}.faults.json")
    for key in keys:
        with contextlib.suppress(Exception):
            machine.delete(key)
    return path
