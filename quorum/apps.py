from django.apps import AppConfig


class QuorumConfig(AppConfig):
    """Dynamo-style quorum store: the coordinator runs here, the data lives on the storage
    nodes (QUORUM_NODE_URLS, not Django databases: see quorum.storage)."""

    name = "quorum"
    verbose_name = "quorum"

    def ready(self) -> None:
        from core.metrics import scrape_collector_register
        from quorum.metrics import HintsCollector

        scrape_collector_register(HintsCollector())
