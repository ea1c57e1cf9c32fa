"""The workspace's lock: one change to a stack at a time, across processes."""

import subprocess
import sys

from devstack.workspace import Workspace

TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "a") as handle:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(1)
"""


def _another_process_can_lock(workspace: Workspace) -> bool:
    result = subprocess.run(
        [sys.executable, "-c", TRY_LOCK, str(workspace.base_dir / ".lock")],
        timeout=30,
        check=False,
    )
    return result.returncode == 0


def test_the_lock_keeps_other_processes_out_while_held(workspace):
    with workspace.lock():
        locked_out = not _another_process_can_lock(workspace)

    assert locked_out
    assert _another_process_can_lock(workspace)


def test_the_lock_is_held_until_the_outermost_of_nested_uses_ends(workspace):
    with workspace.lock():
        with workspace.lock():
            pass
        still_held = not _another_process_can_lock(workspace)

    assert still_held
