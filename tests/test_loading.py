"""Torch-side loading: the masked dataset, the two samplers, padding accounting and the outlier filter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from trajsynth.data.directory import load_split
from trajsynth.data.loading import (
    ConditionStratifiedSampler,
    LengthAwareBatchSampler,
    TrajectoryDataset,
    padding_fraction,
    trajectory_stats,
    zscore_filter,
)
from trajsynth.data.summary import padding_report

# --------------------------------------------------------------------------- dataset


def test_dataset_items_and_masks(small_data_dir):
    ds = TrajectoryDataset.from_dir(small_data_dir, "train")
    s = load_split(small_data_dir, "train", with_paths=False)
    assert len(ds) == len(s) > 50 and ds.max_len == 100
    for i in (0, 3, len(ds) - 1):
        x, c, length, mask = ds[i]
        assert x.shape == (100, 8) and x.dtype == torch.float32
        assert c.shape == (1,) and c.item() == pytest.approx(float(s.C[i]))
        assert int(length) == s.L[i] and mask.dtype == torch.bool
        assert mask.sum() == length and bool(mask[: int(length)].all()) and not bool(mask[int(length):].any())
        assert torch.all(x[~mask] == 0) and torch.equal(x, torch.from_numpy(s.X[i]))


def test_batches_are_trimmed_to_the_longest(small_data_dir):
    ds = TrajectoryDataset.from_dir(small_data_dir, "val")
    idx = [0, 1, 2]
    xb, cb, lb = ds.batch(idx)
    assert xb.shape == (3, int(lb.max()), 8) and cb.shape == (3, 1) and lb.tolist() == ds.L[idx].tolist()
    assert torch.equal(xb, ds.X[idx, : int(lb.max())])
    assert ds.batch(idx, trim=False)[0].shape == (3, 100, 8)


def test_dataset_with_a_dataloader(small_data_dir):
    ds = TrajectoryDataset.from_dir(small_data_dir, "train")
    loader = DataLoader(ds, batch_sampler=LengthAwareBatchSampler(ds.L.numpy(), 16, pool_factor=2, seed=0))
    seen = 0
    for x, c, length, mask in loader:
        assert x.shape[0] == c.shape[0] == length.shape[0] == mask.shape[0] <= 16
        assert torch.equal(mask.sum(dim=1), length)
        seen += len(length)
    assert seen == len(ds)


def test_dataset_rejects_disagreeing_sizes():
    with pytest.raises(ValueError, match="disagree on N"):
        TrajectoryDataset(np.zeros((4, 10, 8)), np.zeros(3), np.ones(4, int))


# --------------------------------------------------------------------------- length-aware batches


@pytest.fixture(scope="module")
def lengths():
    return np.random.default_rng(0).integers(3, 100, size=2345)


@pytest.mark.parametrize("batch_size, pool_factor", [(64, 50), (64, 3), (7, 1), (100, 10)])
def test_every_index_exactly_once_per_epoch(lengths, batch_size, pool_factor):
    sampler = LengthAwareBatchSampler(lengths, batch_size, pool_factor=pool_factor, seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == -(-len(lengths) // batch_size)
        flat = np.concatenate(batches)
        assert len(flat) == len(lengths) and np.array_equal(np.sort(flat), np.arange(len(lengths)))
        assert all(1 <= len(b) <= batch_size for b in batches)


def test_drop_last_gives_full_batches_only(lengths):
    sampler = LengthAwareBatchSampler(lengths, 64, pool_factor=5, seed=0, drop_last=True)
    batches = list(sampler)
    assert len(batches) == len(sampler) == len(lengths) // 64
    assert all(len(b) == 64 for b in batches)
    flat = np.concatenate(batches)
    assert len(set(flat.tolist())) == len(flat)  # no repeats


def test_length_aware_batches_cut_padding(lengths, small_data_dir):
    sampler = LengthAwareBatchSampler(lengths, 64, seed=1)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(lengths))
    random_batches = [order[i : i + 64] for i in range(0, len(order), 64)]
    aware, rand = padding_fraction(lengths, list(sampler)), padding_fraction(lengths, random_batches)
    assert aware < 0.05 and rand > 0.3 and aware < rand / 5
    # and on real-looking lengths of a processed split, through the summary helper
    L = load_split(small_data_dir, "train", with_paths=False).L
    report = padding_report(L, batch_size=16)
    assert report["length_aware"] < report["random"] and report["step_reduction"] > 0


def test_length_aware_batches_are_deterministic_per_seed_and_epoch(lengths):
    def run(seed, epoch):
        s = LengthAwareBatchSampler(lengths, 64, seed=seed)
        s.set_epoch(epoch)
        return list(s)

    a = run(1, 0)
    assert run(1, 0) == a  # same (seed, epoch): same batches in the same order
    assert run(1, 1) != a and run(2, 0) != a
    s = LengthAwareBatchSampler(lengths, 64, seed=1)
    s.set_epoch(5)
    list(s)
    s.set_epoch(0)
    assert list(s) == a  # iteration does not carry hidden state


def test_batches_are_shuffled_not_sorted(lengths):
    batches = list(LengthAwareBatchSampler(lengths, 64, seed=0))
    maxima = [lengths[b].max() for b in batches]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)


def test_padding_fraction_exact():
    lengths = np.array([1, 2, 3, 4])
    assert padding_fraction(lengths, [[0, 3], [1, 2]]) == pytest.approx(1 - 10 / 14)
    assert padding_fraction(lengths, [[0], [1], [2], [3]]) == 0


# --------------------------------------------------------------------------- condition-stratified sampling


def test_condition_sampler_is_uniform_over_bins_on_skewed_conditions():
    rng = np.random.default_rng(0)
    c = np.concatenate([rng.uniform(-1.0, -0.81, 9500), rng.uniform(-1, 1, 500)])  # 95 % in the first bin
    n_bins, n = 10, 20_000
    idx = np.array(list(ConditionStratifiedSampler(c, n_bins=n_bins, num_samples=n, seed=0)))
    assert len(idx) == n and idx.min() >= 0 and idx.max() < len(c)
    counts = np.histogram(c[idx], bins=np.linspace(c.min(), c.max(), n_bins + 1))[0]
    assert counts.min() > 0.8 * n / n_bins and counts.max() < 1.2 * n / n_bins
    # plain uniform sampling would give the first bin about 95 %
    assert counts[0] < 0.15 * n


def test_condition_sampler_skips_empty_bins():
    c = np.concatenate([np.full(900, -1.0), np.full(100, 1.0)])
    idx = np.array(list(ConditionStratifiedSampler(c, n_bins=10, num_samples=4000, seed=1)))
    share_high = (c[idx] == 1.0).mean()
    assert 0.45 < share_high < 0.55


def test_condition_sampler_is_deterministic_and_has_a_length():
    c = np.linspace(-1, 1, 300) ** 3
    s = ConditionStratifiedSampler(c, n_bins=5, seed=4)
    a = list(s)
    assert len(s) == len(a) == 300 and list(ConditionStratifiedSampler(c, n_bins=5, seed=4)) == a
    s.set_epoch(1)
    assert list(s) != a
    assert list(ConditionStratifiedSampler(c, n_bins=5, seed=5)) != a


def test_condition_sampler_with_one_condition_value():
    idx = list(ConditionStratifiedSampler(np.zeros(10), n_bins=4, num_samples=50))
    assert len(idx) == 50 and set(idx) <= set(range(10))


# --------------------------------------------------------------------------- outlier filter


def test_zscore_filter_removes_an_injected_outlier(small_data_dir):
    s = load_split(small_data_dir, "train", with_paths=False)
    X, L = s.X.copy(), s.L.copy()
    keep0, rep0 = zscore_filter(X, L, threshold=4.0)
    victim = int(np.flatnonzero(keep0)[len(L) // 2])
    X[victim, 1 : L[victim], 2] = 1.0  # absurd constant top speed
    X[victim, 1 : L[victim], 3] = 1.0  # and constant maximal acceleration
    keep, report = zscore_filter(X, L, threshold=4.0)
    assert keep0[victim] and not keep[victim]
    assert report.removed_by_stat["mean_abs_accel"] == rep0.removed_by_stat["mean_abs_accel"] + 1
    assert report.kept + report.removed == len(L) and report.removed == rep0.removed + 1
    assert keep.dtype == bool and keep.sum() > 0.9 * len(L)


def test_zscore_filter_threshold(small_data_dir):
    s = load_split(small_data_dir, "train", with_paths=False)
    keep, report = zscore_filter(s.X, s.L, threshold=1e6)
    assert keep.all() and report.removed == 0 and report.threshold == 1e6
    strict = zscore_filter(s.X, s.L, threshold=1.0)[1]
    assert strict.removed > 0


def test_trajectory_stats_use_only_valid_steps():
    X = np.zeros((2, 10, 8), np.float32)
    X[:, :4, 2] = 0.5
    X[0, 4:, 2] = 99.0  # garbage past the length must not count
    stats = trajectory_stats(X, np.array([4, 4]))
    assert stats["mean_speed"].tolist() == [0.5, 0.5] and stats["max_speed"].tolist() == [0.5, 0.5]
    assert stats["length"].tolist() == [4, 4]
