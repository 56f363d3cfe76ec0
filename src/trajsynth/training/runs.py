"""Run folders: one new ``run_YYYYMMDD_HHMMSS`` per run, never reused."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any


def new_run_dir(base: str | Path, prefix: str = "run") -> Path:
    """Create and return a fresh run folder below ``base`` (suffix _2, _3… within one second)."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    for k in range(1, 1000):
        path = base / (f"{prefix}_{stamp}" if k == 1 else f"{prefix}_{stamp}_{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder below {base}")


class MetricsLog:
    """Append-only ``metrics.jsonl``: one JSON object per line, flushed at once."""

    def __init__(self, path: str | Path, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:  # other ranks under torchrun: rank 0 writes
            return
        record = {"time": round(time.time(), 3), **record}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
