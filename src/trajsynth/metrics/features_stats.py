"""Per-step feature statistics and per-sequence vectors of padded sequences, real vs generated.

The numbers behind the comparison figures (``trajsynth.figures``): means and spreads of each
feature over the valid steps, feature × feature correlations, fixed-size vectors of whole
sequences and the leave-one-out 1-nearest-neighbour accuracy of two sets in an embedding.
Inputs are plain arrays: X (N, T, F) with zero padding and lengths L (N,).
"""

from __future__ import annotations

import numpy as np

from ..data.features import FEATURE_NAMES
from .base import check_sequences


def valid_steps(X: np.ndarray, L: np.ndarray, max_n: int | None = None, seed: int = 0) -> np.ndarray:
    """Feature rows (n_steps, F) float64 of all valid steps (t < L), optionally a seeded subsample."""
    mask = np.arange(X.shape[1])[None, :] < np.asarray(L)[:, None]  # (N, T)
    V = np.asarray(X)[mask].astype(np.float64)  # (n_steps, F)
    if max_n is not None and len(V) > max_n:
        V = V[np.sort(np.random.default_rng(seed).choice(len(V), max_n, replace=False))]
    return V


def _rel_pct(real: float, fake: float) -> float:
    """100 · (fake − real) / |real|; NaN when real is 0 (no meaningful ratio)."""
    return float(100.0 * (fake - real) / abs(real)) if real != 0 else float("nan")


def feature_stats(real_X, real_L, fake_X, fake_L, names: tuple[str, ...] = FEATURE_NAMES) -> list[dict]:
    """Per feature, mean and (population) std over all valid steps of each set, their relative
    differences ``100 · (synthetic − real) / |real|`` in %, and the standardised mean difference
    ``(synthetic mean − real mean) / real std`` (meaningful also for means near 0)."""
    Vr, Vf = valid_steps(*check_sequences(real_X, real_L, "real")), valid_steps(*check_sequences(
        fake_X, fake_L, "generated"))
    if not Vr.shape[1] == Vf.shape[1] == len(names):
        raise ValueError(f"{len(names)} feature names for {Vr.shape[1]} real and {Vf.shape[1]} generated features")
    rows = []
    for f, name in enumerate(names):
        rm, rs, fm, fs = Vr[:, f].mean(), Vr[:, f].std(), Vf[:, f].mean(), Vf[:, f].std()
        rows.append(dict(feature=name, real_mean=float(rm), real_std=float(rs), synthetic_mean=float(fm),
                         synthetic_std=float(fs), mean_rel_diff_pct=_rel_pct(rm, fm),
                         std_rel_diff_pct=_rel_pct(rs, fs),
                         mean_diff_over_std=float((fm - rm) / rs) if rs > 0 else float("nan")))
    return rows


def feature_correlations(X: np.ndarray, L: np.ndarray, max_points: int = 50_000, seed: int = 0) -> np.ndarray:
    """(F, F) Pearson correlations over valid steps (a seeded subsample of them); NaN for a constant feature."""
    V = valid_steps(X, L, max_points, seed)  # (n, F)
    if len(V) < 2:
        return np.full((X.shape[2], X.shape[2]), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(V, rowvar=False)


def sequence_vectors(X: np.ndarray, L: np.ndarray, n_steps: int = 16) -> np.ndarray:
    """Each sequence's valid part linearly resampled to ``n_steps`` steps and flattened: (N, n_steps·F)."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    L = np.asarray(L, np.int64)
    pos = np.linspace(0, 1, n_steps)[None, :] * (L[:, None] - 1)  # (N, S) fractional step index
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, L[:, None] - 1)
    w = (pos - lo)[..., None]  # (N, S, 1)
    X = np.asarray(X, np.float64)
    take = lambda idx: np.take_along_axis(X, idx[..., None], axis=1)  # (N, S, F)
    return ((1 - w) * take(lo) + w * take(hi)).reshape(len(L), -1)


def loo_1nn_accuracy(E: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy of ``labels`` (n,) in embedding E (n, d); 0.5: sets mixed."""
    E, labels = np.asarray(E, np.float64), np.asarray(labels)
    if E.ndim != 2 or labels.shape != (len(E),) or len(E) < 2:
        raise ValueError(f"need E (n, d) with n >= 2 and labels (n,), got {E.shape} and {labels.shape}")
    D = ((E[:, None, :] - E[None, :, :]) ** 2).sum(-1)  # (n, n)
    np.fill_diagonal(D, np.inf)
    return float((labels[D.argmin(1)] == labels).mean())
