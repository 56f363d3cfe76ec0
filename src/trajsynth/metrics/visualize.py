"""Figures comparing real and generated trajectories, written as timestamped PNG files.

Six figures (one function each) and :func:`visualize_all`, which writes all of them:

1. ``trajectory_comparison``: real paths next to generated paths of similar distance, and
   speed profiles over normalised time;
2. ``feature_kde``: a Gaussian KDE (Scott's bandwidth) of each of the 8 features;
3. ``feature_stats``: mean and std per feature, real vs synthetic, as a table (+ a CSV);
4. ``feature_correlation``: feature × feature correlations, real vs generated;
5. ``embedding_pca_tsne``: PCA and exact t-SNE of per-sequence representations;
6. ``trajectories_3d``: paths in (x, y, t).

Figures are plain :class:`matplotlib.figure.Figure` objects that never touch pyplot (so no
window opens and no backend is needed) unless ``show=True``. Files are written under a
temporary name and hard-linked into place, so a file never appears half-written and an
existing file is never replaced: a name already taken gets a ``_2``, ``_3`` … suffix.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import matplotlib.pyplot as plt
import mpl_toolkits.mplot3d  # noqa: F401  (registers the "3d" projection)
import numpy as np
import torch
from matplotlib.figure import Figure

from ..data.features import FEATURE_NAMES, N_FEATURES
from ..utils.atomic import atomic_path

REAL_COLOR, FAKE_COLOR = "tab:blue", "tab:orange"
_TS_RE = re.compile(r"^\d{8}_\d{6}$")
_DPI = 110

# --------------------------------------------------------------------------- inputs


@dataclass
class TrajectorySet:
    """One set of trajectories: features, lengths and pixel paths, checked on construction.

    X: (N, T, 8) normalised features, zero past each length; L: (N,) lengths in [1, T];
    paths: N arrays (n_i, 3) of (t_ms, x_px, y_px) starting at (0, 0, 0).
    """

    X: np.ndarray
    L: np.ndarray
    paths: list[np.ndarray]
    name: str = "real"

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, np.float32)
        self.L = np.asarray(self.L)
        _check_features(self.X, self.L, self.name)
        self.L = self.L.astype(np.int64)
        self.paths = [np.asarray(p, np.float64) for p in self.paths]
        _check_paths(self.paths, len(self.L), self.name)

    def __len__(self) -> int:
        return len(self.L)

    @classmethod
    def from_data_dir(cls, data_dir: str | Path, split: str, name: str | None = None) -> TrajectorySet:
        """One split of a processed data directory."""
        from ..data.directory import load_split

        s = load_split(data_dir, split)
        if len(s.offsets) != len(s) + 1 or s.offsets[-1] == 0:
            raise ValueError(f"{data_dir}: split {split!r} has no paths_{split}.npz")
        return cls(s.X, s.L, [s.path(i) for i in range(len(s))], name or split)


def _check_features(X: np.ndarray, L: np.ndarray, name: str) -> None:
    if X.ndim != 3 or X.shape[2] != N_FEATURES:
        raise ValueError(f"{name}: X must have shape (N, T, {N_FEATURES}), got {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name}: the set is empty (X has shape {X.shape})")
    if L.shape != (X.shape[0],):
        raise ValueError(f"{name}: L must have shape ({X.shape[0]},) to match X, got {L.shape}")
    if not np.issubdtype(L.dtype, np.integer):
        raise ValueError(f"{name}: L must hold integers, got dtype {L.dtype}")
    if L.min() < 1 or L.max() > X.shape[1]:
        raise ValueError(f"{name}: lengths must lie in [1, {X.shape[1]}], got [{L.min()}, {L.max()}]")
    if not np.isfinite(X).all():
        raise ValueError(f"{name}: X holds {int((~np.isfinite(X)).sum())} NaN/Inf values")


def _check_paths(paths: list[np.ndarray], n: int, name: str) -> None:
    if len(paths) != n:
        raise ValueError(f"{name}: {len(paths)} paths for {n} sequences in X")
    for i, p in enumerate(paths):
        if p.ndim != 2 or p.shape[1] != 3 or len(p) == 0:
            raise ValueError(f"{name}: path {i} must have shape (n, 3) with n >= 1, got {p.shape}")
        if not np.isfinite(p).all():
            raise ValueError(f"{name}: path {i} holds NaN/Inf values")


def as_set(data: TrajectorySet | tuple, name: str) -> TrajectorySet:
    """A :class:`TrajectorySet` from itself or an ``(X, L, paths)`` tuple."""
    if isinstance(data, TrajectorySet):
        return data
    if not isinstance(data, tuple | list) or len(data) != 3:
        raise ValueError(f"{name}: expected a TrajectorySet or an (X, L, paths) tuple, got {type(data).__name__}")
    return TrajectorySet(*data, name=name)


def _valid_steps(s: TrajectorySet, max_n: int | None = None, seed: int = 0) -> np.ndarray:
    """Feature rows of all valid steps (t < L), optionally a seeded subsample of them."""
    mask = np.arange(s.X.shape[1])[None, :] < s.L[:, None]  # (N, T)
    V = s.X[mask].astype(np.float64)  # (n_steps, 8)
    if max_n is not None and len(V) > max_n:
        V = V[np.sort(np.random.default_rng(seed).choice(len(V), max_n, replace=False))]
    return V


# --------------------------------------------------------------------------- saving


def make_timestamp(when: datetime | None = None) -> str:
    """``YYYYmmdd_HHMMSS`` of ``when`` (default: now)."""
    return (when or datetime.now()).strftime("%Y%m%d_%H%M%S")


def _check_timestamp(ts: str | None) -> str:
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
    fig.savefig(buf, format="png", dpi=_DPI)
    return write_new(out_dir, f"{name}_{_check_timestamp(timestamp)}", ".png", buf.getvalue())


def _new_figure(figsize: tuple[float, float], show: bool) -> Figure:
    """A pyplot figure when it is to be shown, else a detached one (no window, no backend)."""
    return plt.figure(figsize=figsize) if show else Figure(figsize=figsize)


# --------------------------------------------------------------------------- 1. paths


def _end_distance(paths: list[np.ndarray]) -> np.ndarray:
    return np.array([math.hypot(p[-1, 1] - p[0, 1], p[-1, 2] - p[0, 2]) for p in paths])


def matched_pairs(real: TrajectorySet, fake: TrajectorySet, n: int, seed: int = 0) -> list[tuple[int, int]]:
    """n random real indices, each paired with an unused generated one of the closest distance (log scale)."""
    rng = np.random.default_rng(seed)
    n = min(n, len(real), len(fake))
    ri = rng.choice(len(real), n, replace=False)
    ri = ri[np.argsort(_end_distance([real.paths[i] for i in ri]))]  # shortest first
    log_fake = np.log1p(_end_distance(fake.paths))
    free = np.ones(len(fake), bool)
    pairs = []
    for i in ri:
        gap = np.where(free, np.abs(log_fake - math.log1p(_end_distance([real.paths[i]])[0])), np.inf)
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
    fig = _new_figure((2.4 * max(len(pairs), 4), 8.4), show)
    gs = fig.add_gridspec(3, 2 * len(pairs), height_ratios=[1, 1, 1.1])
    for c, (i, j) in enumerate(pairs):
        pr, pf = real.paths[i], fake.paths[j]
        xlim, ylim = _square_limits([pr, pf])
        for r, (p, s, color) in enumerate(((pr, real, REAL_COLOR), (pf, fake, FAKE_COLOR))):
            ax = fig.add_subplot(gs[r, 2 * c : 2 * c + 2])
            _draw_path(ax, p, color)
            ax.set(xlim=xlim, ylim=ylim, aspect="equal")
            ax.set_title(f"{s.name}: {_end_distance([p])[0]:.0f} px, {p[-1, 0] - p[0, 0]:.0f} ms", fontsize=8)
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


# --------------------------------------------------------------------------- 2. KDE


def scott_bandwidth(values: np.ndarray) -> float:
    """Scott's rule for one dimension: h = σ · n^(-1/5) (a small floor for constant data)."""
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {values.shape}")
    sigma = float(values.std())
    if sigma <= 0:
        sigma = max(abs(float(values[0])), 1.0) * 1e-3
    return sigma * len(values) ** (-1 / 5)


def gaussian_kde(values: np.ndarray, grid: np.ndarray, bandwidth: float | None = None,
                 chunk: int = 2048) -> np.ndarray:
    """Density of ``values`` on ``grid`` with a Gaussian kernel (Scott's bandwidth by default)."""
    values = np.asarray(values, np.float64)
    grid = np.asarray(grid, np.float64)
    if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
        raise ValueError("values must be a non-empty 1-D array of finite numbers")
    h = scott_bandwidth(values) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise ValueError(f"bandwidth must be > 0, got {h}")
    dens = np.zeros(grid.shape)
    for a in range(0, len(values), chunk):  # chunks bound the (grid, chunk) matrix in memory
        z = (grid[:, None] - values[None, a : a + chunk]) / h  # (G, chunk)
        dens += np.exp(-0.5 * z**2).sum(1)
    return dens / (len(values) * h * math.sqrt(2 * math.pi))


def _kde_grid(v: np.ndarray, n: int = 300) -> np.ndarray:
    """Grid over the data plus a margin, but not past the features' [-1, 1] range where the data
    stay inside it (density there would be kernel leakage, not data)."""
    vmin, vmax = float(v.min()), float(v.max())
    pad = max(0.05 * (vmax - vmin), 0.05)
    return np.linspace(min(vmin, max(vmin - pad, -1.0)), max(vmax, min(vmax + pad, 1.0)), n)


def feature_kde_figure(real: TrajectorySet, fake: TrajectorySet, max_points: int = 5000, seed: int = 0,
                       show: bool = False) -> Figure:
    """KDE of each feature over valid steps (up to ``max_points`` per set), real vs generated."""
    Vr, Vf = _valid_steps(real, max_points, seed), _valid_steps(fake, max_points, seed + 1)
    fig = _new_figure((15, 7), show)
    axes = fig.subplots(2, 4).ravel()
    for f, ax in enumerate(axes):
        grid = _kde_grid(np.r_[Vr[:, f], Vf[:, f]])
        for V, s, color in ((Vr, real, REAL_COLOR), (Vf, fake, FAKE_COLOR)):
            d = gaussian_kde(V[:, f], grid)
            ax.plot(grid, d, color=color, lw=1.6, label=s.name)
            ax.fill_between(grid, d, color=color, alpha=0.15, lw=0)
        ax.set(title=FEATURE_NAMES[f], xlabel="normalised value", ylabel="density" if f % 4 == 0 else None)
        ax.legend(fontsize=8)
    fig.suptitle(f"Per-feature Gaussian KDE over valid steps (Scott bandwidth; {len(Vr)} {real.name} "
                 f"and {len(Vf)} {fake.name} steps)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- 3. statistics


def _rel_pct(real: float, fake: float) -> float:
    """100 · (fake − real) / |real|; NaN when real is 0 (no meaningful ratio)."""
    return float(100.0 * (fake - real) / abs(real)) if real != 0 else float("nan")


def feature_stats(real: TrajectorySet | tuple, fake: TrajectorySet | tuple) -> list[dict]:
    """Per feature, mean and (population) std over all valid steps of each set, their relative
    differences ``100 · (synthetic − real) / |real|`` in %, and the standardised mean difference
    ``(synthetic mean − real mean) / real std`` (meaningful also for means near 0)."""
    real, fake = as_set(real, "real"), as_set(fake, "generated")
    Vr, Vf = _valid_steps(real), _valid_steps(fake)
    rows = []
    for f, name in enumerate(FEATURE_NAMES):
        rm, rs, fm, fs = Vr[:, f].mean(), Vr[:, f].std(), Vf[:, f].mean(), Vf[:, f].std()
        rows.append(dict(feature=name, real_mean=float(rm), real_std=float(rs), synthetic_mean=float(fm),
                         synthetic_std=float(fs), mean_rel_diff_pct=_rel_pct(rm, fm),
                         std_rel_diff_pct=_rel_pct(rs, fs),
                         mean_diff_over_std=float((fm - rm) / rs) if rs > 0 else float("nan")))
    return rows


def stats_csv(rows: list[dict]) -> str:
    """The rows of :func:`feature_stats` as CSV text (full precision)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows({k: (repr(float(v)) if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    return buf.getvalue()


def _cell_color(value: float, edges: tuple[float, float]) -> str:
    """Green / yellow / red by |value| against two edges; grey when not finite."""
    if not np.isfinite(value):
        return "#eeeeee"
    return "#c8e6c9" if abs(value) < edges[0] else "#fff3c4" if abs(value) < edges[1] else "#ffcdd2"


def _stats_colors(r: dict) -> list[str]:
    # a Δ% of a mean that is small against the spread says little: leave it uncoloured
    near_zero = abs(r["real_mean"]) < 0.1 * r["real_std"]
    mean_pct = "white" if near_zero else _cell_color(r["mean_rel_diff_pct"], (10, 25))
    return ["white"] * 3 + [mean_pct, _cell_color(r["mean_diff_over_std"], (0.1, 0.25))] + ["white"] * 2 + [
        _cell_color(r["std_rel_diff_pct"], (10, 25))]


def feature_stats_figure(rows: list[dict], real_name: str = "real", fake_name: str = "synthetic",
                         show: bool = False) -> Figure:
    """The numbers of :func:`feature_stats` as a table, differences coloured by size."""
    cols = ["feature", f"{real_name} mean", f"{fake_name} mean", "mean Δ%", "Δmean / std", f"{real_name} std",
            f"{fake_name} std", "std Δ%"]
    keys = ["real_mean", "synthetic_mean", "mean_rel_diff_pct", "mean_diff_over_std", "real_std", "synthetic_std",
            "std_rel_diff_pct"]
    cells = [[r["feature"]] + [_fmt_cell(k, r[k]) for k in keys] for r in rows]
    fig = _new_figure((12, 3.6), show)
    ax = fig.subplots()
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=cols, cellColours=[_stats_colors(r) for r in rows], loc="center",
                     cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1, 1.45)
    for c in range(len(cols)):
        table[0, c].set_text_props(weight="bold")
    ax.set_title(f"Feature statistics over valid steps (normalised units): {real_name} vs {fake_name}")
    fig.text(0.5, 0.025, f"Δ% = 100·({fake_name} − {real_name})/|{real_name}|, green < 10 %, yellow < 25 %, "
             f"red above; Δmean / std = mean difference in {real_name} standard deviations, green < 0.1, "
             "yellow < 0.25.\nA mean Δ% is left uncoloured where the mean is near 0 (|mean| < 0.1 std): "
             "read Δmean / std there.", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def _fmt_cell(key: str, v: float) -> str:
    if not np.isfinite(v):
        return "n/a"
    return f"{v:+.1f}" if key.endswith("pct") else f"{v:+.3f}" if key == "mean_diff_over_std" else f"{v:.4f}"


# --------------------------------------------------------------------------- 4. correlations


def feature_correlations(s: TrajectorySet, max_points: int = 50_000, seed: int = 0) -> np.ndarray:
    """(8, 8) Pearson correlations over valid steps; NaN for a constant feature."""
    V = _valid_steps(s, max_points, seed)
    if len(V) < 2:
        return np.full((N_FEATURES, N_FEATURES), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(V, rowvar=False)


def _heatmap(fig: Figure, ax, C: np.ndarray, title: str) -> None:
    im = ax.imshow(C, cmap="RdBu_r", vmin=-1, vmax=1)
    for (a, b), v in np.ndenumerate(C):
        ax.text(b, a, "–" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="white" if np.isfinite(v) and abs(v) > 0.6 else "black")
    ax.set_xticks(range(N_FEATURES), FEATURE_NAMES, rotation=45, ha="right")
    ax.set_yticks(range(N_FEATURES), FEATURE_NAMES)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="Pearson r")


def feature_correlation_figure(real: TrajectorySet, fake: TrajectorySet, seed: int = 0,
                               show: bool = False) -> Figure:
    """Both correlation heatmaps and a scatter of the 28 feature-pair correlations against y = x."""
    Cr, Cf = feature_correlations(real, seed=seed), feature_correlations(fake, seed=seed + 1)
    fig = _new_figure((19, 6), show)
    axes = fig.subplots(1, 3, gridspec_kw=dict(width_ratios=[1, 1, 0.9]))
    _heatmap(fig, axes[0], Cr, f"{real.name}: feature correlations")
    _heatmap(fig, axes[1], Cf, f"{fake.name}: feature correlations")
    iu = np.triu_indices(N_FEATURES, 1)
    x, y = Cr[iu], Cf[iu]
    ax = axes[2]
    ax.plot([-1, 1], [-1, 1], "k--", lw=1, label="y = x (identical)")
    ax.scatter(x, y, s=25, color="tab:purple", zorder=3, label="feature pair")
    gap = np.abs(np.nan_to_num(x - y, nan=0.0))
    strong = np.nan_to_num(np.maximum(np.abs(x), np.abs(y)), nan=0.0) >= 0.15
    named = np.flatnonzero(strong | ((gap >= np.sort(gap)[-3]) & (gap > 0.05)))  # strong or most different pairs
    for rank, k in enumerate(named[np.argsort(np.nan_to_num(y[named]))]):  # alternate sides: close points stay legible
        ax.annotate(f"{FEATURE_NAMES[iu[0][k]]}–{FEATURE_NAMES[iu[1][k]]}", (x[k], y[k]), fontsize=8,
                    xytext=(8, -12) if rank % 2 == 0 else (-8, 8), ha="left" if rank % 2 == 0 else "right",
                    textcoords="offset points")
    mad = float(np.nanmean(np.abs(x - y))) if np.isfinite(x - y).any() else float("nan")
    ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), aspect="equal", xlabel=f"r in {real.name}",
           ylabel=f"r in {fake.name}", title=f"pairwise correlations (mean |Δr| = {mad:.3f})")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- 5. embeddings


def sequence_vectors(s: TrajectorySet, n_steps: int = 16) -> np.ndarray:
    """Each sequence's valid part linearly resampled to ``n_steps`` steps and flattened: (N, n_steps·8)."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    pos = np.linspace(0, 1, n_steps)[None, :] * (s.L[:, None] - 1)  # (N, S) fractional step index
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, s.L[:, None] - 1)
    w = (pos - lo)[..., None]  # (N, S, 1)
    X = s.X.astype(np.float64)
    take = lambda idx: np.take_along_axis(X, idx[..., None], axis=1)  # (N, S, 8)
    return ((1 - w) * take(lo) + w * take(hi)).reshape(len(s), -1)


def pca(Z: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Scores on the first k principal components (by SVD) and their explained-variance ratios.

    Signs are fixed so that each component's largest-magnitude loading is positive.
    """
    Z = np.asarray(Z, np.float64)
    if Z.ndim != 2 or len(Z) < 2 or not np.isfinite(Z).all():
        raise ValueError(f"Z must be a finite 2-D array with at least 2 rows, got shape {Z.shape}")
    if not 1 <= k <= min(Z.shape):
        raise ValueError(f"k must be in [1, {min(Z.shape)}], got {k}")
    Zc = Z - Z.mean(0)
    U, S, Vt = np.linalg.svd(Zc, full_matrices=False)
    sign = np.sign(Vt[np.arange(k), np.abs(Vt[:k]).argmax(1)])  # (k,)
    var = S**2
    ratio = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    return U[:, :k] * S[:k] * sign, ratio


def _tsne_affinities(D2: torch.Tensor, perplexity: float, tol: float = 1e-5, max_steps: int = 64) -> torch.Tensor:
    """Symmetric joint probabilities P (n, n): each row's Gaussian precision β is found by a
    bisection on log β (all rows at once) so that the row's entropy equals log(perplexity)."""
    n = D2.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    D = D2 / D2[~eye].mean().clamp_min(1e-12)  # scale-free: β adapts to the units
    D = D - D.masked_fill(eye, float("inf")).min(1, keepdim=True).values  # row min 0: exp stays finite
    D = D.masked_fill(eye, 0.0)
    target = math.log(perplexity)
    lo, hi = torch.full((n, 1), -30.0, dtype=D.dtype), torch.full((n, 1), 30.0, dtype=D.dtype)

    def conditional(log_beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        beta = torch.exp(log_beta)  # (n, 1)
        W = torch.exp(-beta * D).masked_fill_(eye, 0.0)  # (n, n)
        Zr = W.sum(1, keepdim=True)
        H = torch.log(Zr) + beta * (W * D).sum(1, keepdim=True) / Zr  # (n, 1) entropy in nats
        return W / Zr, H  # p_{j|i}

    for _ in range(max_steps):
        log_beta = (lo + hi) / 2  # (n, 1)
        P, H = conditional(log_beta)
        if (H - target).abs().max() < tol:
            break
        too_flat = H > target  # entropy too high: sharpen (raise β)
        lo, hi = torch.where(too_flat, log_beta, lo), torch.where(too_flat, hi, log_beta)
    return ((P + P.T) / (2 * n)).clamp_min(1e-12).masked_fill(eye, 0.0)


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads, then restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tsne(Z: np.ndarray, perplexity: float = 30.0, n_iter: int = 500, seed: int = 0, exaggeration: float = 12.0,
         early_iter: int | None = None, learning_rate: float | None = None, init: str = "pca",
         num_threads: int | None = None) -> np.ndarray:
    """Exact t-SNE (van der Maaten & Hinton 2008) of Z (n, d) → (n, 2), in torch on the CPU.

    Perplexity-calibrated affinities, early exaggeration for the first quarter of the iterations,
    gradient descent with momentum (0.5, then 0.8) and per-coordinate adaptive gains. The learning
    rate defaults to n / exaggeration (Belkina et al. 2019), at least 50. The initialisation is
    the PCA scores scaled to std 1e-4 (``init="pca"``) or seeded Gaussian noise (``"random"``).
    Perplexity is capped at (n − 1) / 3 for small sets. ``num_threads`` (torch intra-op threads,
    restored afterwards) defaults to 1: the per-iteration work is a few memory-bound passes over
    (n, n) buffers, and on a busy 2-core machine spinning OpenMP threads cost far more than they
    save (2,000 points: 9 s on one thread, 41 s on two; 240 points: 0.1 s against 30 s).
    """
    Z = np.asarray(Z, np.float64)
    if Z.ndim != 2 or len(Z) < 5 or not np.isfinite(Z).all():
        raise ValueError(f"Z must be a finite 2-D array with at least 5 rows, got shape {Z.shape}")
    if init not in ("pca", "random"):
        raise ValueError(f"init must be 'pca' or 'random', got {init!r}")
    n = len(Z)
    with _torch_threads(num_threads or 1):
        return _tsne(Z, min(float(perplexity), (n - 1) / 3), n_iter, seed, exaggeration, early_iter,
                     learning_rate, init)


def _tsne(Z: np.ndarray, perplexity: float, n_iter: int, seed: int, exaggeration: float, early_iter: int | None,
          learning_rate: float | None, init: str) -> np.ndarray:
    n = len(Z)
    Zt = torch.from_numpy(Z - Z.mean(0))
    P = _tsne_affinities(torch.cdist(Zt, Zt).pow(2), perplexity).float()  # (n, n)
    if init == "pca" and min(Z.shape) >= 2:
        Y0 = pca(Z, 2)[0]
        Y0 = Y0 / max(Y0[:, 0].std(), 1e-12) * 1e-4
    else:
        Y0 = np.random.default_rng(seed).normal(0, 1e-4, (n, 2))
    lr = learning_rate or max(n / exaggeration, 50.0)
    early = n_iter // 4 if early_iter is None else early_iter
    return _tsne_descent(P, torch.tensor(Y0, dtype=torch.float32), n_iter, early, exaggeration, lr).numpy()


def _tsne_grad(P: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """dKL/dY = 4 Σ_j (p_ij − q_ij)(1 + |y_i − y_j|²)^-1 (y_i − y_j).

    The cost is memory traffic over (n, n) buffers, so they are updated in place, and the
    products with the two columns of Y use outer-product / matrix-vector kernels, which are
    several times faster on the CPU than a matmul with an inner size of 2.
    """
    y0, y1 = Y[:, 0].contiguous(), Y[:, 1].contiguous()  # (n,) each
    sq = y0 * y0 + y1 * y1
    num = (sq[:, None] + (sq + 1.0)[None, :]).addr_(y0, y0, alpha=-2).addr_(y1, y1, alpha=-2)  # 1 + |y_i - y_j|²
    num.clamp_min_(1.0).reciprocal_().fill_diagonal_(0.0)  # (n, n) Student-t kernel
    W = torch.sub(P, num, alpha=1.0 / float(num.sum())).mul_(num)  # (n, n) (p - q) · kernel
    WY = torch.stack([torch.mv(W, y0), torch.mv(W, y1)], 1)  # (n, 2)
    return 4.0 * (W.sum(1, keepdim=True) * Y - WY)


def _tsne_descent(P: torch.Tensor, Y: torch.Tensor, n_iter: int, early: int, exaggeration: float,
                  lr: float) -> torch.Tensor:
    update, gains = torch.zeros_like(Y), torch.ones_like(Y)
    P_exag = P * exaggeration
    for it in range(n_iter):
        momentum = 0.5 if it < early else 0.8
        grad = _tsne_grad(P_exag if it < early else P, Y)
        same = (grad > 0) == (update > 0)  # gradient kept its direction: shrink the gain, else grow it
        gains = torch.where(same, gains * 0.8, gains + 0.2).clamp_min(0.01)
        update = momentum * update - lr * gains * grad
        Y = Y + update
        Y = Y - Y.mean(0)
    return Y


def _subsample(n: int, max_n: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, max_n, replace=False)) if n > max_n else np.arange(n)


def loo_1nn_accuracy(E: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy of ``labels`` in embedding E (0.5: sets mixed)."""
    D = ((E[:, None, :] - E[None, :, :]) ** 2).sum(-1)  # (n, n)
    np.fill_diagonal(D, np.inf)
    return float((labels[D.argmin(1)] == labels).mean())


def embedding_figure(real: TrajectorySet, fake: TrajectorySet, max_per_set: int = 1000, n_steps: int = 16,
                     seed: int = 0, tsne_iter: int = 500, show: bool = False) -> Figure:
    """PCA and t-SNE of per-sequence vectors (up to ``max_per_set`` of each set), coloured by set."""
    ir, jf = _subsample(len(real), max_per_set, seed), _subsample(len(fake), max_per_set, seed + 1)
    Z = np.concatenate([sequence_vectors(real, n_steps)[ir], sequence_vectors(fake, n_steps)[jf]])
    lab = np.r_[np.zeros(len(ir), int), np.ones(len(jf), int)]
    E_pca, ratio = pca(Z, 2)
    t0 = time.perf_counter()
    E_tsne = tsne(Z, n_iter=tsne_iter, seed=seed)
    secs = time.perf_counter() - t0
    fig = _new_figure((14, 6.5), show)
    axes = fig.subplots(1, 2)
    for ax, E in zip(axes, (E_pca, E_tsne), strict=True):
        for k, (s, color) in enumerate(((real, REAL_COLOR), (fake, FAKE_COLOR))):
            ax.scatter(*E[lab == k].T, s=7, alpha=0.5, color=color, label=f"{s.name} (n={int((lab == k).sum())})",
                       linewidths=0)
        ax.legend(fontsize=9, markerscale=2)
    axes[0].set(xlabel=f"PC1 ({100 * ratio[0]:.1f} % of variance)", ylabel=f"PC2 ({100 * ratio[1]:.1f} %)",
                title=f"PCA (1-NN {real.name}/{fake.name} accuracy {loo_1nn_accuracy(E_pca, lab):.2f}; 0.5 = mixed)")
    axes[1].set(xlabel="t-SNE 1 (arbitrary units)", ylabel="t-SNE 2 (arbitrary units)",
                title=f"exact t-SNE, perplexity 30, {tsne_iter} it., {secs:.1f} s "
                      f"(1-NN accuracy {loo_1nn_accuracy(E_tsne, lab):.2f})")
    fig.suptitle(f"Sequences resampled to {n_steps} steps × 8 features, flattened")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- 6. 3-D paths


def trajectories_3d_figure(real: TrajectorySet, fake: TrajectorySet, n: int = 6, seed: int = 0,
                           show: bool = False) -> Figure:
    """A few real and generated (distance-matched) paths in (x, y, t), one shared box for both."""
    pairs = matched_pairs(real, fake, n, seed)
    chosen = [(real, [real.paths[i] for i, _ in pairs], REAL_COLOR), (fake, [fake.paths[j] for _, j in pairs],
                                                                     FAKE_COLOR)]
    allp = np.concatenate([p for _, ps, _ in chosen for p in ps])
    fig = _new_figure((14, 6.5), show)
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


# --------------------------------------------------------------------------- all


def visualize_all(real: TrajectorySet | tuple, fake: TrajectorySet | tuple, out_dir: str | Path, seed: int = 0,
                  timestamp: str | None = None, show: bool = False, max_tsne_per_set: int = 1000) -> list[Path]:
    """Write every figure as ``out_dir/<name>_<timestamp>.png`` plus ``feature_stats_<timestamp>.csv``.

    ``real`` and ``fake`` are :class:`TrajectorySet` objects or ``(X, L, paths)`` tuples. A name
    that exists already gets a ``_2``, ``_3`` … suffix: nothing is overwritten. Returns the paths
    written, in order: trajectory_comparison, feature_kde, feature_stats (png, csv),
    feature_correlation, embedding_pca_tsne, trajectories_3d.
    """
    real, fake = as_set(real, "real"), as_set(fake, "generated")
    ts = _check_timestamp(timestamp)
    rows = feature_stats(real, fake)
    jobs = [
        ("trajectory_comparison", lambda: trajectory_comparison_figure(real, fake, seed=seed, show=show)),
        ("feature_kde", lambda: feature_kde_figure(real, fake, seed=seed, show=show)),
        ("feature_stats", lambda: feature_stats_figure(rows, real.name, fake.name, show=show)),
        ("feature_correlation", lambda: feature_correlation_figure(real, fake, seed=seed, show=show)),
        ("embedding_pca_tsne", lambda: embedding_figure(real, fake, max_tsne_per_set, seed=seed, show=show)),
        ("trajectories_3d", lambda: trajectories_3d_figure(real, fake, seed=seed, show=show)),
    ]
    written = []
    for name, make in jobs:
        fig = make()
        written.append(save_figure(fig, out_dir, name, ts))
        if name == "feature_stats":
            written.append(write_new(out_dir, f"feature_stats_{ts}", ".csv", stats_csv(rows).encode()))
    if show:
        plt.show()  # only pyplot figures (made because show=True) appear
    return written
