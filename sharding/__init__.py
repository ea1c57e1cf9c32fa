"""Sharded counters and events over shard_0..shard_N-1, with hot-key spreading."""
