"""Which database each app's tables live in (architecture section 2).

Reads of the apps whose reads follow the request's consistency are decided first by
``consistency.routing.ConsistencyRouter`` (listed before this one in ``DATABASE_ROUTERS``)."""

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
