"""Every scenario's user class, for interactive use:

    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000

then pick the user classes in the web UI (http://127.0.0.1:8089), or headless:

    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 \\
        --headless -u 16 -r 16 -t 30s TrivialUser
"""

import sys
from pathlib import Path

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
