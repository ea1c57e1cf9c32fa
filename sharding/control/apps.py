from django.apps import AppConfig


class ShardingControlConfig(AppConfig):
    """The sharding control plane on ``default``: bucket map versions, bucket moves and the
    history of hot keys. The data itself lives on the shards (the ``sharding`` app)."""

    name = "sharding.control"
    label = "sharding_control"
    verbose_name = "sharding control plane"
