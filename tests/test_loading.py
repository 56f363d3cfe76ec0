"""Dataset, samplers and the outlier filter."""

from __future__ import annotations

import numpy as np
import torch

from trajsynth.data.loading import (
    ConditionStratifiedSampler,
    LengthAwareBatchSampler,
    TrajectoryDataset,
    padding_fraction,
    zscore_filter,
)


def test_dataset_items_masks_and_trimmed_batches(small_data_dir):
    ds = TrajectoryDataset.from_dir(small_data_dir, "train")
    x, c, length, mask = ds[3]
    assert x.shape == (100, 8) and c.shape == (1,) and mask.sum() == length
    assert torch.all(x[~mask] == 0)
    xb, cb, lb = ds.batch([0, 1, 2])
    assert xb.shape[1] == int(lb.max()) and cb.shape == (3, 1)


def test_length_aware_batches_cover_everything_and_cut_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 100, size=2000)
    sampler = LengthAwareBatchSampler(lengths, 64, seed=1)
    batches = list(sampler)
    flat = np.concatenate(batches)
    assert len(batches) == len(sampler) and np.array_equal(np.sort(flat), np.arange(2000))
    order = rng.permutation(2000)
    random_batches = [order[i : i + 64] for i in range(0, 2000, 64)]
    assert padding_fraction(lengths, batches) < 0.1 < padding_fraction(lengths, random_batches)
    assert [b for b in LengthAwareBatchSampler(lengths, 64, seed=1)] == batches  # same (seed, epoch)
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_condition_stratified_sampler_is_uniform_over_bins():
    c = np.concatenate([np.full(950, -0.9), np.linspace(-1, 1, 50)])  # 95 % in one bin
    idx = np.array(list(ConditionStratifiedSampler(c, n_bins=5, num_samples=5000, seed=0)))
    counts = np.histogram(c[idx], bins=np.linspace(-1, 1, 6))[0]
    assert counts.min() > 0.15 * 5000 and counts.max() < 0.25 * 5000


def test_zscore_filter_removes_an_injected_outlier(small_data_dir):
    ds = TrajectoryDataset.from_dir(small_data_dir, "train")
    X, L = ds.X.numpy().copy(), ds.L.numpy()
    jitter = np.where(np.arange(L[7]) % 2 == 0, 1.0, -1.0)
    X[7, : L[7], 3], X[7, : L[7], 6] = jitter, jitter  # extreme acceleration and turning at every step
    keep, report = zscore_filter(X, L, threshold=4.0)
    assert not keep[7] and report.removed_by_stat["mean_abs_accel"] >= 1
    assert report.removed == (~keep).sum()
    assert keep.sum() > 0.9 * len(L)
