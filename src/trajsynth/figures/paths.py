"""Figures of pixel paths: real next to generated paths of similar distance, speed profiles over
normalised time, and paths in (x, y, t)."""

from __future__ import annotations

import math

import mpl_toolkits.mplot3d  # noqa: F401  (registers the "3d" projection)
import numpy as np
from matplotlib.figure import Figure

from ..data.sets import TrajectorySet
from .output import FAKE_COLOR, REAL_COLOR, new_figure


def end_distance(paths: list[np.ndarray]) -> np.ndarray:
    """(N,) straight-line distance in px from each path's first point to its last."""
    return np.array([math.hypot(p[-1, 1] - p[0, 1], p[-1, 2] - p[0, 2]) for p in paths])


def matched_pairs(real: TrajectorySet, fake: TrajectorySet, n: int, seed: int = 0) -> list[tuple[int, int]]:
    """n random real indices, each paired with an unused generated one of the closest distance (log scale)."""
    rng = np.random.default_rng(seed)
    n = min(n, len(real), len(fake))
    ri = rng.choice(len(real), n, replace=False)
    ri = ri[np.argsort(end_distance([real.paths[i] for i in ri]))]  # shortest first
    log_fake = np.log1p(end_distance(fake.paths))
    free = np.ones(len(fake), bool)
    pairs = []
    for i in ri:
        gap = np.where(free, np.abs(log_fake - math.log1p(end_distance([real.paths[i]])[0])), np.inf)
        j = int(np.argmin(gap))
        free[j] = False
        pairs.append((int(i), j))
    return pairs


def speed_profile(p: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """Speed (px/ms) of path p interpolated on normalised time ``grid``; None if undefined."""
    dt = np.diff(p[:, 0])
    ok = dt > 0
    if ok.sum() < 1 or p[-1, 0] <= p[0, 0]:
        return None
    v = np.hypot(*np.diff(p[:, 1:], axis=0).T)[ok] / dt[ok]  # (steps,)
    t_mid = ((p[1:, 0] + p[:-1, 0]) / 2 - p[0, 0])[ok] / (p[-1, 0] - p[0, 0])  # step midpoints in [0, 1]
    return np.interp(grid, t_mid, v)


def _profiles(paths: list[np.ndarray], grid: np.ndarray) -> np.ndarray:
    rows = [r for r in (speed_profile(p, grid) for p in paths) if r is not None]
    return np.array(rows) if rows else np.full((1, len(grid)), np.nan)


def _square_limits(paths: list[np.ndarray]) -> tuple[tuple[float, float], tuple[float, float]]:
    """One square box that holds every given path (so paths share a scale)."""
    pts = np.concatenate([p[:, 1:] for p in paths])
    lo, hi = pts.min(0), pts.max(0)
    mid, half = (lo + hi) / 2, max((hi - lo).max() / 2 * 1.15, 5.0)
    return (mid[0] - half, mid[0] + half), (mid[1] + half, mid[1] - half)  # y inverted: screen coordinates


def _draw_path(ax, p: np.ndarray, color: str) -> None:
    ax.plot(p[:, 1], p[:, 2], "-", color=color, lw=1.3, marker=".", ms=3)
    ax.plot(p[0, 1], p[0, 2], "o", color="k", ms=4)
    ax.plot(p[-1, 1], p[-1, 2], "x", color="k", ms=6)


def trajectory_comparison_figure(real: TrajectorySet, fake: TrajectorySet, n: int = 6, seed: int = 0,
                                 show: bool = False) -> Figure:
    """Real paths (top row) over generated ones of similar distance (middle row), same scale per
    column; bottom: speed profiles of those pairs and median ± IQR over up to 500 sequences."""
    pairs = matched_pairs(real, fake, n, seed)
    fig = new_figure((2.4 * max(len(pairs), 4), 8.4), show)
    gs = fig.add_gridspec(3, 2 * len(pairs), height_ratios=[1, 1, 1.1])
    for c, (i, j) in enumerate(pairs):
        pr, pf = real.paths[i], fake.paths[j]
        xlim, ylim = _square_limits([pr, pf])
        for r, (p, s, color) in enumerate(((pr, real, REAL_COLOR), (pf, fake, FAKE_COLOR))):
            ax = fig.add_subplot(gs[r, 2 * c : 2 * c + 2])
            _draw_path(ax, p, color)
            ax.set(xlim=xlim, ylim=ylim, aspect="equal")
            ax.set_title(f"{s.name}: {end_distance([p])[0]:.0f} px, {p[-1, 0] - p[0, 0]:.0f} ms", fontsize=8)
            ax.tick_params(labelsize=7)
            if c == 0:
                ax.set_ylabel("y (px, down)", fontsize=8)
            if r == 1:
                ax.set_xlabel("x (px)", fontsize=8)
    half = len(pairs)
    _speed_pairs(fig.add_subplot(gs[2, :half]), real, fake, pairs)
    _speed_bands(fig.add_subplot(gs[2, half:]), real, fake, seed)
    fig.suptitle(f"{real.name} vs {fake.name}: paths of similar distance (o start, x end; each column shares "
                 "one scale) and speed profiles")
    fig.tight_layout()
    return fig


def _speed_pairs(ax, real: TrajectorySet, fake: TrajectorySet, pairs: list[tuple[int, int]]) -> None:
    grid = np.linspace(0, 1, 101)
    for k, (i, j) in enumerate(pairs):
        for s, idx, color in ((real, i, REAL_COLOR), (fake, j, FAKE_COLOR)):
            v = speed_profile(s.paths[idx], grid)
            if v is not None:
                ax.plot(grid, v, color=color, lw=1, alpha=0.8, label=s.name if k == 0 else None)
    ax.set(xlabel="time / duration", ylabel="speed (px/ms)", title="speed profiles of the paths above")
    ax.legend(fontsize=8)


def _speed_bands(ax, real: TrajectorySet, fake: TrajectorySet, seed: int, max_n: int = 500) -> None:
    grid = np.linspace(0, 1, 101)
    rng = np.random.default_rng(seed)
    for s, color in ((real, REAL_COLOR), (fake, FAKE_COLOR)):
        idx = rng.choice(len(s), min(max_n, len(s)), replace=False)
        V = _profiles([s.paths[i] for i in idx], grid)  # (n, 101)
        q25, q50, q75 = np.nanpercentile(V, [25, 50, 75], axis=0)
        ax.fill_between(grid, q25, q75, color=color, alpha=0.25, lw=0)
        ax.plot(grid, q50, color=color, lw=2, label=f"{s.name}: median, 25-75 % (n={len(V)})")
    ax.set(xlabel="time / duration", ylabel="speed (px/ms)", title="speed over normalised time, all sequences")
    ax.legend(fontsize=8)


def trajectories_3d_figure(real: TrajectorySet, fake: TrajectorySet, n: int = 6, seed: int = 0,
                           show: bool = False) -> Figure:
    """A few real and generated (distance-matched) paths in (x, y, t), one shared box for both."""
    pairs = matched_pairs(real, fake, n, seed)
    chosen = [(real, [real.paths[i] for i, _ in pairs], REAL_COLOR), (fake, [fake.paths[j] for _, j in pairs],
                                                                     FAKE_COLOR)]
    allp = np.concatenate([p for _, ps, _ in chosen for p in ps])
    fig = new_figure((14, 6.5), show)
    for k, (s, ps, color) in enumerate(chosen):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        for p in ps:
            ax.plot(p[:, 1], p[:, 2], np.zeros(len(p)), color="0.6", lw=0.8, alpha=0.7)  # shadow on t = 0
            ax.plot(p[:, 1], p[:, 2], p[:, 0], color=color, lw=1.3)
            ax.scatter(p[-1, 1], p[-1, 2], p[-1, 0], color="k", marker="x", s=15)
        ax.set(xlim=(allp[:, 1].min(), allp[:, 1].max()), ylim=(allp[:, 2].max(), allp[:, 2].min()),
               zlim=(0, allp[:, 0].max()), xlabel="x (px)", ylabel="y (px, down)", zlabel="t (ms)")
        ax.set_title(f"{s.name}: {len(ps)} paths in (x, y, t)")
        ax.view_init(elev=22, azim=-60)
    fig.suptitle("Paths over time from (0, 0, 0), distance-matched pairs (grey: the xy path on t = 0; x: the end); "
                 "same axes both sides")
    fig.tight_layout()
    return fig
