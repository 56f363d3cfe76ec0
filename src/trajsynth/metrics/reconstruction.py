"""Paired metrics: how far a model's copy of each real movement lies from that movement.

Unlike the other metrics, which compare two sets as wholes, these compare movement i of one set
with movement i of the other, step for step, so the sets must pair (same count, same lengths):
an autoencoder's reconstructions of the real movements, scored by ``evaluate --reconstructions``.
"""

from __future__ import annotations

import numpy as np

from .base import MetricInfo, check_sequences, register

register(MetricInfo(
    "recon_mse", "lower", 0.0,
    "Mean squared difference of the normalised features, real movement vs its reconstruction, over valid steps",
))
register(MetricInfo(
    "recon_px_median", "lower", 0.0,
    "Median over movements of the mean distance (px) between each real point and its reconstruction",
))


def _check_paired(real_L: np.ndarray, copy_L: np.ndarray) -> None:
    if len(real_L) != len(copy_L) or np.any(real_L != copy_L):
        raise ValueError("paired metrics need one copy per real movement, with the same length")


def reconstruction_mse(real_X, real_L, copy_X, copy_L) -> float:
    """Mean of (copy − real)² over every feature of every valid step."""
    (X, L), (Y, M) = check_sequences(real_X, real_L, "real"), check_sequences(copy_X, copy_L, "copy")
    _check_paired(L, M)
    if X.shape != Y.shape:
        raise ValueError(f"paired metrics need equal shapes, got {X.shape} and {Y.shape}")
    valid = np.arange(X.shape[1])[None, :] < L[:, None]  # (N, T)
    return float(np.mean((Y[valid].astype(np.float64) - X[valid]) ** 2))


def path_error_px(real_paths, copy_paths) -> float:
    """Median over movements of the mean point-to-point distance in pixels (robust to a few far-off copies)."""
    if len(real_paths) != len(copy_paths) or not len(real_paths):
        raise ValueError(f"paired metrics need one copy per real movement, got {len(real_paths)} real and "
                         f"{len(copy_paths)} copies")
    _check_paired(np.array([len(p) for p in real_paths]), np.array([len(p) for p in copy_paths]))
    per_movement = [np.hypot(*(np.asarray(c)[:, 1:] - np.asarray(r)[:, 1:]).T).mean()
                    for r, c in zip(real_paths, copy_paths, strict=True)]
    return float(np.median(per_movement))
