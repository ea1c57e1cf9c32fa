"""Which database each app's tables live in (DESIGN section 2)."""

from __future__ import annotations

from django.conf import settings

APP_DATABASES = {"accounts": "accounts", "ledger": "ledger"}
SHARDED_APPS = {"sharding"}


class AppDatabaseRouter:
    """Sends the accounts and ledger apps to their own databases and everything else to
    ``default``; sharded apps' tables exist on every shard, and their rows are placed by the
    sharding service with explicit ``using()``.

    Replicas get no migrations: they are physical copies of the primary. This router never
    sends a read to a replica by itself: lag would make a read-after-write stale, so replica
    reads are an explicit choice made by the code that can tolerate or check the lag.
    """

    def _database_for(self, app_label: str) -> str | None:
        if app_label in SHARDED_APPS:
            return None
        return APP_DATABASES.get(app_label, "default")

    def db_for_read(self, model, **hints) -> str | None:
        return self._database_for(model._meta.app_label)

    def db_for_write(self, model, **hints) -> str | None:
        return self._database_for(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        return obj1._state.db == obj2._state.db

    def allow_migrate(self, db: str, app_label: str, model_name=None, **hints) -> bool:
        if db in settings.REPLICA_ALIASES:
            return False
        if app_label in SHARDED_APPS:
            return db in settings.SHARD_ALIASES
        return db == APP_DATABASES.get(app_label, "default")


class ConsistencyRouter:
    """Decides reads of the apps in ``CONSISTENCY_ROUTED_APPS`` (profiles) by the current
    ``core.consistency`` context; says nothing about anything else, so ``AppDatabaseRouter``
    (listed after it) keeps every other decision.

    What lag means for callers: under ``session`` (the default) a read goes to a replica only
    when that replica has replayed the session's write of the object (queryset hint
    ``consistency_key``), else to the primary; under ``eventual`` any replica in rotation, so
    the result may be older than the caller's own write; ``strong``, ``pin_to_primary()`` and
    code running outside any context (shell, admin, migrations) read the primary.
    """

    def db_for_read(self, model, **hints) -> str | None:
        if model._meta.app_label not in settings.CONSISTENCY_ROUTED_APPS:
            return None
        instance = hints.get("instance")
        if instance is not None and instance._state.db:
            return instance._state.db
        from core.consistency import read_decision

        return read_decision(hints.get("consistency_key")).alias

    def db_for_write(self, model, **hints) -> str | None:
        return None

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        return None

    def allow_migrate(self, db: str, app_label: str, model_name=None, **hints) -> bool | None:
        return None
