"""The regions' servers and the proxy their replication links go through (architecture s. 9)."""

from devstack import config
from devstack.components.linkproxy import LinkProxy
from devstack.components.postgres import PostgresServer
from devstack.workspace import Workspace


class RegionServer(PostgresServer):
    """One region: a Postgres server publishing its changes by logical replication, small
    (connections, memory) because there are three of them beside the core stack.

    ``max_slot_wal_keep_size`` bounds the WAL a slot may hold for a cut link: past it the slot
    is lost (the subscriber must be recreated and anti-entropy fills the gap), and the disk is
    safe. ``wal_keep_size`` is 0 so that it does not extend that bound (no physical standby
    needs it here); ``wal_retrieve_retry_interval`` is how soon an apply worker whose link was
    cut tries again after a heal.
    """

    given_by = "REGION_URLS"

    def __init__(
        self, workspace: Workspace, *, name: str, port: int, slot_wal_keep_mb: int
    ) -> None:
        super().__init__(
            workspace,
            name=name,
            port=port,
            databases=[config.REGION_DATABASE],
            port_variable="STATELAB_REGION_PORT",
            settings={
                "wal_level": "logical",
                "max_wal_senders": "20",
                "max_replication_slots": "20",
                "max_logical_replication_workers": "12",
                "max_sync_workers_per_subscription": "2",
                "max_worker_processes": "24",
                "wal_keep_size": "0",
                "max_slot_wal_keep_size": f"'{slot_wal_keep_mb}MB'",
                "min_wal_size": "'32MB'",
                "max_wal_size": "'256MB'",
                "wal_retrieve_retry_interval": "'500ms'",
                "wal_receiver_status_interval": "'1s'",
                "max_connections": "60",
                "shared_buffers": "'32MB'",
                "work_mem": "'4MB'",
            },
        )


class RegionLinks(LinkProxy):
    """The link proxy of the regions: six routes, "ri->rj" carrying rj's subscription to ri.

    A cut link holds a new connection ``refuse_after_ms`` before resetting it: an apply worker
    refused within a millisecond can die before Postgres 16.2's launcher sees it attach, and the
    launcher then misses its exit and sleeps 3 minutes before starting it again
    (docs/patterns/regions.md, "Partitions"; regions.links.links_revive wakes it as well).
    """

    given_by = "REGION_LINKS_URL"
    port_variable = "STATELAB_REGION_LINKS_PORT"
    refuse_after_ms = 200
