"""Every scenario's user class, for interactive use:

    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000

then pick the user classes in the web UI (http://127.0.0.1:8089), or headless:

    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000 \\
        --headless -u 16 -r 16 -t 30s TrivialUser
"""

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtest.baseline import TrivialUser

__all__ = ["TrivialUser"]

for _module_name in (
    "loadtest.transfers",
    "loadtest.profiles",
    "loadtest.sharding",
    "loadtest.mixed",
):
    try:
        _module = importlib.import_module(_module_name)
    except ModuleNotFoundError as error:
        if error.name != _module_name:
            raise
        continue
    for _name in getattr(_module, "LOCUST_USERS", ()):
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
