"""The chaos soak: a mixed workload under faults, checked Jepsen style (``python -m chaos``)."""
