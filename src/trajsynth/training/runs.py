"""Run folders: one new ``run_YYYYMMDD_HHMMSS`` per run, never reused."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ..utils.atomic import WriteError, make_folder, writing


def new_run_dir(base: str | Path, prefix: str = "run") -> Path:
    """Create and return a fresh run folder below ``base`` (suffix _2, _3… within one second).

    A base that cannot hold it (read-only, full, a file) is a :class:`WriteError` naming the folder.
    """
    base = Path(base)
    with writing(base):
        make_folder(base)
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    for k in range(1, 1000):
        path = base / (f"{prefix}_{stamp}" if k == 1 else f"{prefix}_{stamp}_{k}")
        with writing(path):
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    raise RuntimeError(f"could not create a new run folder below {base}")


class MetricsLog:
    """Append-only ``metrics.jsonl``: one JSON object per line, each written whole by one system call.

    A kill therefore leaves complete lines (at worst a last line cut short inside that call); a line
    that fails to write (full disk) is taken back, and the failure is a :class:`WriteError`.
    """

    def __init__(self, path: str | Path, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:  # other ranks under torchrun: rank 0 writes
            return
        line = (json.dumps({"time": round(time.time(), 3), **record}) + "\n").encode()
        with writing(self.path):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            _append(fd, line, self.path)
        finally:
            os.close(fd)


def _append(fd: int, line: bytes, path: Path) -> None:
    """Write ``line`` at the end of ``fd`` in one call; on failure cut the file back to where it ended."""
    end = os.fstat(fd).st_size
    try:
        with writing(path):
            if os.write(fd, line) != len(line):  # a short write: the disk filled up inside the call
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except WriteError:
        with contextlib.suppress(OSError):  # a device (not a regular file) has nothing to take back
            os.ftruncate(fd, end)
        raise
