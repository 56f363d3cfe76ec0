"""process_map: results in order, and workers that do not outlive the process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trajsynth.utils.parallel import process_map


def test_results_keep_the_items_order():
    assert process_map(abs, [-3, 2, -1], 2) == [3, 2, 1]
    assert process_map(abs, [-3], 1) == [3], "one worker: in-process"


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we read
            continue
        if int(fields[1]) == pid:  # field 4 of stat: the parent's pid
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_workers_end_when_their_parent_is_killed():
    """A parent killed mid-item (SIGKILL: no clean-up runs) leaves no worker running its item on."""
    code = "import time; from trajsynth.utils.parallel import process_map; process_map(time.sleep, [120, 120], 2)"
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2:  # the two spawned workers (and a resource tracker)
            time.sleep(0.2)
            workers = [p for p in _children(parent.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2, "both workers started"
        time.sleep(1.0)  # they are asleep in their item
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers), "orphaned workers still running their 120 s item"
    finally:
        parent.kill()
