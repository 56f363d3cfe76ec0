"""The TrajectorySet container: validation, conversion, subsets and loading a split."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from trajsynth.data.directory import load_split
from trajsynth.data.sets import TrajectorySet, check_sequences
from trajsynth.metrics import base


def small_set(n: int = 5, T: int = 7, F: int = 3, seed: int = 0) -> TrajectorySet:
    """n random sequences with lengths 1..T, their paths and conditions."""
    rng = np.random.default_rng(seed)
    L = rng.integers(1, T + 1, n)
    X = rng.normal(size=(n, T, F))  # (n, T, F) with garbage in the padding
    paths = [np.column_stack([np.arange(k) * 10.0, rng.normal(size=(k, 2)).cumsum(0)]) for k in L]
    return TrajectorySet(X, L, rng.uniform(-1, 1, n), paths, rng.uniform(10, 900, n), name="s")


def test_construction_converts_and_zeroes_the_padding():
    s = small_set()
    assert s.X.dtype == np.float32 and s.L.dtype == np.int64 and s.C.dtype == np.float32
    assert s.distance_px.dtype == np.float64 and all(p.dtype == np.float64 for p in s.paths)
    pad = np.arange(s.X.shape[1])[None, :] >= s.L[:, None]  # (N, T)
    assert np.all(s.X[pad] == 0) and np.any(s.X[~pad] != 0)
    assert len(s) == 5
    two_d = TrajectorySet(s.X, s.L, np.ones((5, 2)))
    assert two_d.C.shape == (5, 2) and two_d.paths is None and two_d.name == ""


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(X=np.zeros((0, 7, 3)), L=np.zeros(0, int)), "empty"),
        (dict(X=np.zeros((5, 7))), r"X must be \(N, T, F\)"),
        (dict(L=np.array([1, 2, 3])), r"L must be \(N,\)"),
        (dict(L=np.array([1, 2, 3, 4, 8])), "lengths must lie"),
        (dict(L=np.array([1, 2, 3, 4, 2.5])), "whole numbers"),
        (dict(X=np.full((5, 7, 3), np.nan)), "NaN or Inf on valid steps"),
        (dict(C=np.ones(4)), "C must have 5 rows"),
        (dict(C=np.ones((5, 1, 1))), "C must have 5 rows"),
        (dict(C=np.array([0, 0, np.inf, 0, 0])), "C holds NaN"),
        (dict(paths=[np.zeros((3, 3))] * 4), "4 paths for 5"),
        (dict(paths=[np.zeros((3, 2))] * 5), "path 0 must have shape"),
        (dict(paths=[np.zeros((3, 3))] * 4 + [np.full((2, 3), np.nan)]), "path 4 holds NaN"),
        (dict(distance_px=np.ones((5, 1))), "distance_px must have 5 rows and 1"),
    ],
)
def test_bad_input_raises_a_clear_error(change, message):
    s = small_set()
    fields = dict(X=s.X, L=s.L, C=s.C, paths=s.paths, distance_px=s.distance_px, name="s") | change
    with pytest.raises(ValueError, match=message):
        TrajectorySet(**fields)


def test_nan_in_the_padding_is_ignored():
    X = np.full((2, 4, 3), np.nan)
    X[:, :2] = 1.0
    s = TrajectorySet(X, np.array([2, 2]))
    assert np.all(s.X[:, 2:] == 0) and np.all(s.X[:, :2] == 1)


def test_subset_keeps_every_field_in_the_given_order():
    s = small_set(n=6)
    sub = s.subset(np.array([4, 1]))
    np.testing.assert_array_equal(sub.X, s.X[[4, 1]])
    np.testing.assert_array_equal(sub.L, s.L[[4, 1]])
    np.testing.assert_array_equal(sub.C, s.C[[4, 1]])
    np.testing.assert_array_equal(sub.distance_px, s.distance_px[[4, 1]])
    assert sub.paths[0] is s.paths[4] and sub.paths[1] is s.paths[1] and sub.name == "s"
    mask = np.array([True, False, True, False, False, True])
    np.testing.assert_array_equal(s.subset(mask).L, s.L[mask])
    bare = TrajectorySet(s.X, s.L).subset([0])
    assert bare.C is None and bare.paths is None and bare.distance_px is None


def test_from_split_draws_a_seeded_subset_with_paths(small_data_dir):
    full = load_split(small_data_dir, "train")
    s = TrajectorySet.from_split(small_data_dir, "train", n=20, seed=3)
    again = TrajectorySet.from_split(small_data_dir, "train", n=20, seed=3)
    other = TrajectorySet.from_split(small_data_dir, "train", n=20, seed=4)
    assert len(s) == 20 and s.name == "train" and s.distance_px is None
    np.testing.assert_array_equal(s.X, again.X)
    assert not np.array_equal(s.X, other.X)
    rows = [int(np.flatnonzero((full.X == x).all(axis=(1, 2)))[0]) for x in s.X]  # where each came from
    assert rows == sorted(rows)
    for k, i in enumerate(rows):
        assert s.L[k] == full.L[i] and s.C[k] == full.C[i]
        np.testing.assert_array_equal(s.paths[k], full.path(i))
    everything = TrajectorySet.from_split(small_data_dir, "train", name="human")
    assert len(everything) == len(full) and everything.name == "human"


def test_from_split_without_paths(small_data_dir, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(small_data_dir, d)
    (d / "paths_test.npz").unlink()
    s = TrajectorySet.from_split(d, "test")
    assert s.paths is None and len(s) == len(load_split(d, "test"))


def test_metrics_use_the_same_check():
    assert base.check_sequences is check_sequences
    X, L = check_sequences(np.ones((2, 3, 1)), np.array([1.0, 3.0]), "x")
    assert L.dtype == np.int64 and X[0, 1:].sum() == 0 and X[1].sum() == 3
