"""Every metric of the profiles app."""

from prometheus_client import Counter

profile_writes_total = Counter("statelab_profile_writes_total", "Profile writes committed")
reads_total = Counter(
    "statelab_profile_reads_total",
    "Profile reads by what served them and why",
    ["target", "reason"],
)
stale_reads_prevented_total = Counter(
    "statelab_profile_stale_reads_prevented_total",
    "Reads that would have been stale and were served fresh instead",
    ["reason"],
)
cache_requests_total = Counter(
    "statelab_profile_cache_total", "Profile cache lookups by result", ["result"]
)
cache_fence_rejections_total = Counter(
    "statelab_profile_cache_fence_rejections_total",
    "Cache sets refused because the cache already held a newer version",
    ["source"],
)
cache_loads_total = Counter(
    "statelab_profile_cache_loads_total", "Database loads made to fill a cache miss"
)
