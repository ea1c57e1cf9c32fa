"""Every scenario's user class, for interactive use:

    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000

then pick the user classes in the web UI (http://127.0.0.1:8089), or headless:

    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 \\
        --headless -u 16 -r 16 -t 30s TrivialUser
"""

import json
import os
import sys
from pathlib import Path

from locust import events

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtest.baseline import TrivialUser
from loadtest.mixed import DayInTheLifeUser
from loadtest.profiles import (
    CachedProfileReadUser,
    PrimaryProfileReadUser,
    ProfileWriteReadUser,
    ReplicaProfileReadUser,
)
from loadtest.sharding import ShardingZipfUser
from loadtest.transfers import BobTransferUser, TransferUser

__all__ = [
    "BobTransferUser",
    "CachedProfileReadUser",
    "DayInTheLifeUser",
    "PrimaryProfileReadUser",
    "ProfileWriteReadUser",
    "ReplicaProfileReadUser",
    "ShardingZipfUser",
    "TransferUser",
    "TrivialUser",
]


@events.quitting.add_listener
def _final_figures(environment, **_kwargs) -> None:
    """With ``STATELAB_BENCH_FIGURES`` set (by ``loadtest.locust_runs``), write each request
    name's figures once the run is over: Locust's CSV is a snapshot refreshed every second
    and not at exit, so a short run on a busy machine can end with it empty."""
    path = os.environ.get("STATELAB_BENCH_FIGURES")
    if not path:
        return
    stats = environment.stats
    rows = [
        {
            "name": entry.name,
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "rps": entry.total_rps,
            "p50_ms": entry.get_response_time_percentile(0.5) if entry.num_requests else 0,
            "p99_ms": entry.get_response_time_percentile(0.99) if entry.num_requests else 0,
        }
        for entry in [*stats.entries.values(), stats.total]
    ]
    Path(path).write_text(json.dumps(rows))
