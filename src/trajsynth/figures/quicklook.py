"""A quick look at real vs generated paths and speed profiles (headless: files only, never a window).

Used for TensorBoard images during training and the quickstart plot.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless by default; nothing is shown on screen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..utils.atomic import atomic_path  # noqa: E402


def _speed(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Speed (px/ms) against time normalised to [0, 1]."""
    dt = np.diff(p[:, 0])
    v = np.hypot(*np.diff(p[:, 1:], axis=0).T) / np.where(dt > 0, dt, np.nan)
    t = p[1:, 0] / max(p[-1, 0], 1e-9)
    return t, v


def _same_limits(*axes, invert_y: bool = False) -> None:
    """Give every axis the union of their data limits (y pointing down when ``invert_y``: screen coordinates)."""
    xs = [v for a in axes for v in a.get_xlim()]
    ys = [v for a in axes for v in a.get_ylim()]
    for a in axes:
        a.set_xlim(min(xs), max(xs))
        a.set_ylim((max(ys), min(ys)) if invert_y else (min(ys), max(ys)))


def paths_figure(real: list[np.ndarray], fake: list[np.ndarray], n: int = 12, title: str = "real vs generated",
                 fake_name: str = "generated"):
    """XY paths (top) and speed profiles (bottom) of up to n real and n other trajectories."""
    fig, ax = plt.subplots(2, 2, figsize=(11, 9))
    for col, (name, paths, color) in enumerate((("real", real, "tab:blue"), (fake_name, fake, "tab:green"))):
        for p in paths[:n]:
            ax[0, col].plot(p[:, 1], p[:, 2], color=color, alpha=0.6, lw=1)
            ax[0, col].plot(p[-1, 1], p[-1, 2], "o", color=color, ms=3)
            t, v = _speed(p)
            ax[1, col].plot(t, v, color=color, alpha=0.5, lw=1)
        ax[0, col].set(title=f"{name}: paths from (0, 0)", xlabel="x (px)", ylabel="y (px, down)")
        ax[1, col].set(title=f"{name}: speed profiles", xlabel="time / duration", ylabel="speed (px/ms)")
    _same_limits(*ax[0], invert_y=True)  # one scale for both sets, so a glance compares like with like
    _same_limits(*ax[1])
    for a in ax[0]:
        a.set_aspect("equal", adjustable="box")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def compare_paths(real: list[np.ndarray], fake: list[np.ndarray], out: str | Path, n: int = 12,
                  title: str = "real vs generated") -> Path:
    """Save :func:`paths_figure` to ``out`` (format from the suffix), atomically."""
    fig = paths_figure(real, fake, n, title)
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png", dpi=110)
    plt.close(fig)
    return out
