"""Figures of the 8 features over valid steps: a density per feature, a statistics table (+ CSV)
and feature × feature correlations, real vs generated."""

from __future__ import annotations

import csv
import io

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from ..data.features import FEATURE_NAMES, N_FEATURES
from ..data.sets import TrajectorySet
from ..metrics.features_stats import feature_correlations, valid_steps
from .output import FAKE_COLOR, REAL_COLOR, new_figure

# --------------------------------------------------------------------------- densities


def density(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian KDE (Scott's rule) of ``values`` (n,) on ``grid`` (G,); constant data get a narrow
    normal pdf (width 1e-3 of the value, at least 1e-3), since their covariance is singular."""
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
        raise ValueError("values must be a non-empty 1-D array of finite numbers")
    if np.ptp(values) == 0:
        return stats.norm.pdf(grid, values[0], max(abs(float(values[0])), 1.0) * 1e-3)
    return stats.gaussian_kde(values, bw_method="scott")(grid)


def _kde_grid(v: np.ndarray, n: int = 300) -> np.ndarray:
    """Grid over the data plus a margin, but not past the features' [-1, 1] range where the data
    stay inside it (density there would be kernel leakage, not data)."""
    vmin, vmax = float(v.min()), float(v.max())
    pad = max(0.05 * (vmax - vmin), 0.05)
    return np.linspace(min(vmin, max(vmin - pad, -1.0)), max(vmax, min(vmax + pad, 1.0)), n)


def feature_kde_figure(real: TrajectorySet, fake: TrajectorySet, max_points: int = 5000, seed: int = 0,
                       show: bool = False) -> Figure:
    """KDE of each feature over valid steps (up to ``max_points`` per set), real vs generated."""
    Vr = valid_steps(real.X, real.L, max_points, seed)  # (n_r, 8)
    Vf = valid_steps(fake.X, fake.L, max_points, seed + 1)  # (n_f, 8)
    fig = new_figure((15, 7), show)
    axes = fig.subplots(2, 4).ravel()
    for f, ax in enumerate(axes):
        grid = _kde_grid(np.r_[Vr[:, f], Vf[:, f]])
        for V, s, color in ((Vr, real, REAL_COLOR), (Vf, fake, FAKE_COLOR)):
            d = density(V[:, f], grid)
            ax.plot(grid, d, color=color, lw=1.6, label=s.name)
            ax.fill_between(grid, d, color=color, alpha=0.15, lw=0)
        ax.set(title=FEATURE_NAMES[f], xlabel="normalised value", ylabel="density" if f % 4 == 0 else None)
        ax.legend(fontsize=8)
    fig.suptitle(f"Per-feature Gaussian KDE over valid steps (Scott bandwidth; {len(Vr)} {real.name} "
                 f"and {len(Vf)} {fake.name} steps)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- statistics table


def stats_csv(rows: list[dict]) -> str:
    """The rows of :func:`trajsynth.metrics.features_stats.feature_stats` as CSV text (full precision)."""
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


def _fmt_cell(key: str, v: float) -> str:
    if not np.isfinite(v):
        return "n/a"
    return f"{v:+.1f}" if key.endswith("pct") else f"{v:+.3f}" if key == "mean_diff_over_std" else f"{v:.4f}"


def feature_stats_figure(rows: list[dict], real_name: str = "real", fake_name: str = "synthetic",
                         show: bool = False) -> Figure:
    """The rows of :func:`~trajsynth.metrics.features_stats.feature_stats` as a table, differences
    coloured by size."""
    cols = ["feature", f"{real_name} mean", f"{fake_name} mean", "mean Δ%", "Δmean / std", f"{real_name} std",
            f"{fake_name} std", "std Δ%"]
    keys = ["real_mean", "synthetic_mean", "mean_rel_diff_pct", "mean_diff_over_std", "real_std", "synthetic_std",
            "std_rel_diff_pct"]
    cells = [[r["feature"]] + [_fmt_cell(k, r[k]) for k in keys] for r in rows]
    fig = new_figure((12, 3.6), show)
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


# --------------------------------------------------------------------------- correlations


def _heatmap(fig: Figure, ax, C: np.ndarray, title: str) -> None:
    im = ax.imshow(C, cmap="RdBu_r", vmin=-1, vmax=1)
    for (a, b), v in np.ndenumerate(C):
        ax.text(b, a, "–" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="white" if np.isfinite(v) and abs(v) > 0.6 else "black")
    ax.set_xticks(range(N_FEATURES), FEATURE_NAMES, rotation=45, ha="right")
    ax.set_yticks(range(N_FEATURES), FEATURE_NAMES)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="Pearson r")


def _pair_scatter(ax, x: np.ndarray, y: np.ndarray, real_name: str, fake_name: str) -> None:
    """Each feature pair's correlation in both sets (x: real, y: generated) against y = x."""
    iu = np.triu_indices(N_FEATURES, 1)
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
    ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), aspect="equal", xlabel=f"r in {real_name}",
           ylabel=f"r in {fake_name}", title=f"pairwise correlations (mean |Δr| = {mad:.3f})")
    ax.legend(fontsize=8, loc="upper left")


def feature_correlation_figure(real: TrajectorySet, fake: TrajectorySet, seed: int = 0,
                               show: bool = False) -> Figure:
    """Both correlation heatmaps and a scatter of the 28 feature-pair correlations against y = x."""
    Cr = feature_correlations(real.X, real.L, seed=seed)  # (8, 8)
    Cf = feature_correlations(fake.X, fake.L, seed=seed + 1)
    fig = new_figure((19, 6), show)
    axes = fig.subplots(1, 3, gridspec_kw=dict(width_ratios=[1, 1, 0.9]))
    _heatmap(fig, axes[0], Cr, f"{real.name}: feature correlations")
    _heatmap(fig, axes[1], Cf, f"{fake.name}: feature correlations")
    iu = np.triu_indices(N_FEATURES, 1)
    _pair_scatter(axes[2], Cr[iu], Cf[iu], real.name, fake.name)
    fig.tight_layout()
    return fig
