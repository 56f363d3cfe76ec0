"""What every metric declares: its name, direction, ideal value and quality bands.

A metric function returns plain numbers; this module says how to read them. The
report (``evaluation.report``) looks each key up here to print its band, so a key
that is not registered is reported without one rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MetricInfo:
    name: str
    direction: str  # "lower" or "higher": which way is better
    ideal: float
    description: str
    # Upper edges of Excellent / Good / Needs work for "lower" metrics (lower edges for
    # "higher" ones); beyond the last edge the value is Poor. None: no agreed bands.
    bands: tuple[float, float, float] | None = None

    def band(self, value: float) -> str | None:
        """Excellent / Good / Needs work / Poor, or None without bands or for a non-finite value."""
        if self.bands is None or value is None or not np.isfinite(value):
            return None
        names = ("Excellent", "Good", "Needs work")
        for name, edge in zip(names, self.bands, strict=True):
            if (value < edge) if self.direction == "lower" else (value > edge):
                return name
        return "Poor"


REGISTRY: dict[str, MetricInfo] = {}


def register(info: MetricInfo) -> MetricInfo:
    if info.direction not in ("lower", "higher"):
        raise ValueError(f"{info.name}: direction must be 'lower' or 'higher', got {info.direction!r}")
    if info.name in REGISTRY and REGISTRY[info.name] != info:
        raise ValueError(f"metric {info.name!r} is registered twice with different definitions")
    REGISTRY[info.name] = info
    return info


@dataclass
class Repeated:
    """A score repeated over k seeds: mean ± std and every value."""

    values: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values))

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f}"


def check_sequences(X, L, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate padded sequences; returns (X (N, T, F) float32 with zeroed padding, L (N,) int64).

    Raises ValueError naming ``name`` on a wrong shape, an empty set, lengths outside [1, T] or
    not whole numbers, or NaN / Inf on a valid step (padding content is ignored).
    """
    X = np.asarray(X, dtype=np.float32)
    L_raw = np.asarray(L)
    if X.ndim != 3:
        raise ValueError(f"{name}: X must be (N, T, F), got shape {X.shape}")
    if L_raw.ndim != 1 or len(L_raw) != len(X):
        raise ValueError(f"{name}: L must be (N,) with N = {len(X)}, got shape {L_raw.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0 or X.shape[2] == 0:
        raise ValueError(f"{name}: empty input, X has shape {X.shape}")
    if not np.issubdtype(L_raw.dtype, np.number) or not np.all(np.isfinite(L_raw)) or np.any(L_raw != np.round(L_raw)):
        raise ValueError(f"{name}: lengths must be whole numbers")
    L = L_raw.astype(np.int64)
    if L.min() < 1 or L.max() > X.shape[1]:
        raise ValueError(f"{name}: lengths must lie in [1, T = {X.shape[1]}], got {L.min()}..{L.max()}")
    valid = np.arange(X.shape[1])[None, :] < L[:, None]  # (N, T)
    if not np.all(np.isfinite(X[valid])):
        raise ValueError(f"{name}: X holds NaN or Inf on valid steps")
    return np.where(valid[:, :, None], X, 0.0).astype(np.float32), L
