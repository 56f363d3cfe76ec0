"""Torch-side loading: a masked Dataset, batch samplers, and an outlier filter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .directory import load_split


class TrajectoryDataset(Dataset):
    """(x, c, length, mask) items of one split, all held as tensors in memory."""

    def __init__(self, X: np.ndarray, C: np.ndarray, L: np.ndarray, A: np.ndarray | None = None,
                 D: np.ndarray | None = None):
        self.X = torch.as_tensor(np.asarray(X, np.float32))  # (N, T, F)
        self.C = torch.as_tensor(np.asarray(C, np.float32)).reshape(-1, 1)  # (N, 1)
        self.L = torch.as_tensor(np.asarray(L, np.int64))  # (N,)
        # optional activity and domain labels (N,) int64
        self.A, self.D = (None if v is None else torch.as_tensor(np.asarray(v, np.int64)) for v in (A, D))
        sizes = [len(v) for v in (self.X, self.C, self.L, self.A, self.D) if v is not None]
        if len(set(sizes)) > 1:
            raise ValueError(f"X, C, L (and labels) disagree on N: {sizes}")

    @classmethod
    def from_dir(cls, data_dir: str | Path, split: str = "train") -> TrajectoryDataset:
        s = load_split(data_dir, split, with_paths=False)
        return cls(s.X, s.C, s.L, s.activity, s.domain)

    @property
    def max_len(self) -> int:
        return self.X.shape[1]

    def __len__(self) -> int:
        return len(self.L)

    def __getitem__(self, i):
        mask = torch.arange(self.max_len) < self.L[i]  # (T,)
        return self.X[i], self.C[i], self.L[i], mask

    def batch(self, idx, trim: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fancy-indexed batch (x, c, lengths); ``trim`` cuts padding past the longest."""
        idx = torch.as_tensor(idx)
        L = self.L[idx]
        T = int(L.max()) if trim else self.max_len
        return self.X[idx, :T], self.C[idx], L


class LengthAwareBatchSampler(Sampler[list[int]]):
    """Batches of similar lengths: sort within shuffled pools, then shuffle the batches.

    Padding is the main cost of recurrent models on variable-length data;
    grouping neighbours in length cuts it without making batches predictable.
    """

    def __init__(self, lengths, batch_size: int, pool_factor: int = 50, seed: int = 0, drop_last: bool = False):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.pool = batch_size, batch_size * pool_factor
        self.seed, self.epoch, self.drop_last = seed, 0, drop_last

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.pool):
            pool = order[start : start + self.pool]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        for i in rng.permutation(len(batches)):
            yield batches[i].tolist()

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def padding_fraction(lengths, batches) -> float:
    """Share of the (batch, longest-in-batch) grid that is padding."""
    lengths = np.asarray(lengths)
    total = sum(len(b) * lengths[b].max() for b in batches)
    return 1.0 - lengths.sum() / total


class ConditionStratifiedSampler(Sampler[int]):
    """Indices drawn uniformly over condition bins, then uniformly within a bin.

    Long and short movements are then seen equally often, so a conditional model
    is not starved of the rare distances.
    """

    def __init__(self, conditions, n_bins: int = 10, num_samples: int | None = None, seed: int = 0):
        c = np.asarray(conditions, np.float64).reshape(-1)
        edges = np.linspace(c.min(), c.max(), n_bins + 1)  # equal-width bins of log distance
        bins = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, n_bins - 1)
        self.members = [np.flatnonzero(bins == b) for b in range(n_bins) if (bins == b).any()]
        self.num_samples = num_samples or len(c)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng((self.seed, self.epoch))
        which = rng.integers(len(self.members), size=self.num_samples)
        for b in which:
            yield int(self.members[b][rng.integers(len(self.members[b]))])

    def __len__(self) -> int:
        return self.num_samples


@dataclass
class FilterReport:
    kept: int
    removed: int
    threshold: float
    removed_by_stat: dict[str, int]


def trajectory_stats(X: np.ndarray, L: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sequence summaries used to spot outliers (on normalised features)."""
    T = X.shape[1]
    mask = (np.arange(T)[None, :] < L[:, None]).astype(np.float64)  # (N, T)
    n = mask.sum(axis=1)
    mean = lambda k: (X[..., k] * mask).sum(axis=1) / n
    return {
        "length": L.astype(np.float64),
        "mean_speed": mean(2),
        "max_speed": np.where(mask > 0, X[..., 2], -np.inf).max(axis=1),
        "mean_abs_accel": (np.abs(X[..., 3]) * mask).sum(axis=1) / n,
        "mean_abs_ang_vel": (np.abs(X[..., 6]) * mask).sum(axis=1) / n,
        "mean_dt": mean(7),
    }


def zscore_filter(X: np.ndarray, L: np.ndarray, threshold: float = 4.0) -> tuple[np.ndarray, FilterReport]:
    """Keep-mask of sequences whose summaries all lie within ``threshold`` std devs."""
    stats = trajectory_stats(np.asarray(X), np.asarray(L))
    keep = np.ones(len(L), bool)
    removed_by = {}
    for name, v in stats.items():
        z = (v - v.mean()) / (v.std() + 1e-12)
        bad = np.abs(z) > threshold
        removed_by[name] = int(bad.sum())
        keep &= ~bad
    return keep, FilterReport(int(keep.sum()), int((~keep).sum()), threshold, removed_by)
