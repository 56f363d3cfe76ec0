"""What every figure shares: colours, input checks, detached figures, and timestamped files
that never replace an existing one.

Figures are plain :class:`matplotlib.figure.Figure` objects that never touch pyplot (so no
window opens and no backend is needed) unless they are made to be shown. Files are written
under a temporary name and hard-linked into place, so a file never appears half-written and
an existing file is never replaced: a name already taken gets a ``_2``, ``_3`` … suffix.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..data.features import N_FEATURES
from ..data.sets import TrajectorySet
from ..utils.atomic import atomic_path

REAL_COLOR, FAKE_COLOR = "tab:blue", "tab:orange"
DPI = 110
_TS_RE = re.compile(r"^\d{8}_\d{6}$")


def figure_set(s: TrajectorySet, default_name: str) -> TrajectorySet:
    """``s`` checked for what the figures draw (the 8 features and pixel paths), named if it was not."""
    if not isinstance(s, TrajectorySet):
        raise TypeError(f"{default_name}: expected a TrajectorySet, got {type(s).__name__}")
    label = s.name or default_name
    if s.X.shape[2] != N_FEATURES:
        raise ValueError(f"{label}: figures need X of shape (N, T, {N_FEATURES}), got {s.X.shape}")
    if s.paths is None:
        raise ValueError(f"{label}: figures need pixel paths (a data directory with paths_*.npz)")
    return s if s.name else replace(s, name=label)


def new_figure(figsize: tuple[float, float], show: bool) -> Figure:
    """A pyplot figure when it is to be shown, else a detached one (no window, no backend)."""
    return plt.figure(figsize=figsize) if show else Figure(figsize=figsize)


def make_timestamp(when: datetime | None = None) -> str:
    """``YYYYmmdd_HHMMSS`` of ``when`` (default: now)."""
    return (when or datetime.now()).strftime("%Y%m%d_%H%M%S")


def check_timestamp(ts: str | None) -> str:
    """``ts`` if it looks like ``YYYYmmdd_HHMMSS``, a fresh one for None, else ValueError."""
    if ts is None:
        return make_timestamp()
    if not isinstance(ts, str) or not _TS_RE.match(ts):
        raise ValueError(f"timestamp must look like YYYYmmdd_HHMMSS, got {ts!r}")
    return ts


def write_new(out_dir: str | Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write ``data`` to ``out_dir/<stem><suffix>``, or ``<stem>_2<suffix>`` … if taken.

    The bytes go to a temporary file first; a hard link then claims the name, which fails
    instead of replacing when the name exists, so no file is ever overwritten, even by a
    concurrent writer.
    """
    out_dir = Path(out_dir)
    for k in range(1, 10_000):
        path = out_dir / (f"{stem}{suffix}" if k == 1 else f"{stem}_{k}{suffix}")
        if path.exists():
            continue
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
                _claim(tmp, path)
        except FileExistsError:
            continue  # taken between the check and the link: try the next name
        return path
    raise FileExistsError(f"no free name for {stem}{suffix} in {out_dir}")


def _claim(tmp: Path, path: Path) -> None:
    """Hard-link ``tmp`` to ``path`` (FileExistsError if taken); the rename that follows is a no-op."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then let the rename place it
        if path.exists():
            raise FileExistsError(path) from None


def save_figure(fig: Figure, out_dir: str | Path, name: str, timestamp: str | None = None) -> Path:
    """Render ``fig`` to PNG and write it as ``out_dir/<name>_<timestamp>.png`` (never overwriting)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return write_new(out_dir, f"{name}_{check_timestamp(timestamp)}", ".png", buf.getvalue())
