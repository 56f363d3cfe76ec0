"""One container for a set of trajectories, in features and in pixels, checked on construction.

A :class:`TrajectorySet` holds what the evaluation and the figures read: normalised feature
sequences with their lengths, optionally the conditions, the pixel paths and the requested
distances of generated movements. :func:`check_sequences` is the one validation of padded
sequences, also used by the metrics on plain arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .directory import load_split


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


def check_paths(paths, n: int, name: str) -> list[np.ndarray]:
    """N pixel paths as float64 arrays (n_i, 3) with n_i >= 1 and finite values, or ValueError."""
    paths = [np.asarray(p, np.float64) for p in paths]
    if len(paths) != n:
        raise ValueError(f"{name}: {len(paths)} paths for {n} sequences in X")
    for i, p in enumerate(paths):
        if p.ndim != 2 or p.shape[1] != 3 or len(p) == 0:
            raise ValueError(f"{name}: path {i} must have shape (n, 3) with n >= 1, got {p.shape}")
        if not np.isfinite(p).all():
            raise ValueError(f"{name}: path {i} holds NaN or Inf")
    return paths


def _check_per_item(a, n: int, name: str, what: str, ndims: tuple[int, ...]) -> np.ndarray:
    """A finite array with n rows and one of the allowed numbers of dimensions, or ValueError."""
    a = np.asarray(a, np.float64 if what == "distance_px" else np.float32)
    if a.ndim not in ndims or len(a) != n:
        raise ValueError(f"{name}: {what} must have {n} rows and {' or '.join(map(str, ndims))} dimension(s), "
                         f"got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: {what} holds NaN or Inf")
    return a


@dataclass
class TrajectorySet:
    """Trajectories in both representations, validated (and converted) on construction."""

    X: np.ndarray  # (N, T, F) float32 normalised features, zero past each length
    L: np.ndarray  # (N,) int64 lengths in [1, T]
    C: np.ndarray | None = None  # (N,) or (N, c) float32 normalised conditions
    paths: list[np.ndarray] | None = None  # N arrays (L_i, 3): t_ms, x_px, y_px from (0, 0, 0)
    distance_px: np.ndarray | None = None  # (N,) requested distance of generated movements
    name: str = ""

    def __post_init__(self) -> None:
        label = self.name or "trajectory set"
        self.X, self.L = check_sequences(self.X, self.L, label)
        n = len(self.L)
        if self.C is not None:
            self.C = _check_per_item(self.C, n, label, "C", (1, 2))
        if self.paths is not None:
            self.paths = check_paths(self.paths, n, label)
        if self.distance_px is not None:
            self.distance_px = _check_per_item(self.distance_px, n, label, "distance_px", (1,))

    def __len__(self) -> int:
        return len(self.L)

    def subset(self, idx) -> TrajectorySet:
        """The trajectories at ``idx`` (integer indices or a boolean mask), in that order."""
        idx = np.arange(len(self))[np.asarray(idx)]  # (n,) integer positions
        pick = lambda a: None if a is None else a[idx]
        paths = None if self.paths is None else [self.paths[i] for i in idx]
        return TrajectorySet(self.X[idx], self.L[idx], pick(self.C), paths, pick(self.distance_px), self.name)

    @classmethod
    def from_split(cls, data_dir: str | Path, split: str, n: int | None = None, seed: int = 0,
                   name: str | None = None) -> TrajectorySet:
        """Up to ``n`` trajectories of one split of a processed data directory, drawn without
        replacement with ``seed`` (kept in file order); no paths when the split has none."""
        s = load_split(data_dir, split)
        if len(s) == 0:
            raise ValueError(f"{data_dir}: split {split!r} is empty")
        idx = np.arange(len(s))
        if n is not None and n < len(s):
            idx = np.sort(np.random.default_rng(seed).choice(len(s), n, replace=False))
        paths = [s.path(int(i)) for i in idx] if s.offsets[-1] > 0 else None
        return cls(s.X[idx], s.L[idx], s.C[idx], paths, None, split if name is None else name)
