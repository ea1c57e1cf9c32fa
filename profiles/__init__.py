"""Profiles with session-consistent reads over replicas and a write-through cache."""
