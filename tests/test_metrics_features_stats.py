"""Per-step feature statistics, sequence vectors and the 1-NN accuracy behind the figures."""

from __future__ import annotations

import numpy as np
import pytest

from trajsynth.data.features import FEATURE_NAMES
from trajsynth.metrics import features_stats as fs


def padded(n: int, T: int, F: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random sequences (n, T, F) with lengths in [1, T] and zero padding."""
    rng = np.random.default_rng(seed)
    L = rng.integers(1, T + 1, n)
    X = rng.normal(size=(n, T, F)) * (np.arange(T)[None, :, None] < L[:, None, None])
    return X.astype(np.float32), L


def test_valid_steps_take_exactly_the_steps_before_each_length():
    X, L = padded(30, 9, 8, seed=0)
    V = fs.valid_steps(X, L)
    np.testing.assert_array_equal(V, np.concatenate([X[i, : L[i]] for i in range(30)]))
    sub = fs.valid_steps(X, L, max_n=10, seed=1)
    assert sub.shape == (10, 8) and all((V == row).all(1).any() for row in sub)
    np.testing.assert_array_equal(sub, fs.valid_steps(X, L, max_n=10, seed=1))


def test_feature_stats_match_numpy_and_refuse_bad_input():
    (Xr, Lr), (Xf, Lf) = padded(40, 9, 8, seed=1), padded(30, 9, 8, seed=2)
    rows = fs.feature_stats(Xr, Lr, Xf + 0.5, Lf)
    Vr, Vf = fs.valid_steps(Xr, Lr), fs.valid_steps(Xf + 0.5, Lf)
    assert [r["feature"] for r in rows] == list(FEATURE_NAMES)
    np.testing.assert_allclose([r["real_mean"] for r in rows], Vr.mean(0), rtol=1e-12)
    np.testing.assert_allclose([r["synthetic_std"] for r in rows], Vf.std(0), rtol=1e-12)
    np.testing.assert_allclose([r["mean_diff_over_std"] for r in rows], (Vf.mean(0) - Vr.mean(0)) / Vr.std(0))
    with pytest.raises(ValueError, match="8 feature names for 3"):
        fs.feature_stats(Xr[..., :3], Lr, Xf[..., :3], Lf)
    with pytest.raises(ValueError, match="generated: lengths"):
        fs.feature_stats(Xr, Lr, Xf, Lf + 20)


def test_correlations_see_a_linear_relation_and_a_constant_feature():
    X, L = padded(50, 9, 3, seed=3)
    X[..., 1] = 2 * X[..., 0]  # zero in the padding too
    X[..., 2] = np.where(np.arange(9)[None, :] < L[:, None], 0.7, 0.0)  # constant on valid steps
    C = fs.feature_correlations(X, L)
    assert C.shape == (3, 3) and C[0, 1] == pytest.approx(1.0)
    assert np.isnan(C[2]).all() and np.isnan(C[:, 2]).all()


def test_sequence_vectors_resample_the_valid_part():
    X, L = padded(20, 12, 8, seed=4)
    V = fs.sequence_vectors(X, L, 16).reshape(20, 16, 8)
    np.testing.assert_allclose(V[:, 0], X[:, 0], atol=1e-6)
    np.testing.assert_allclose(V[:, -1], X[np.arange(20), L - 1], atol=1e-6)
    k = int(np.argmax(L))  # halfway through a sequence of length n: between steps (n-1)/2 on both sides
    mid = fs.sequence_vectors(X[k : k + 1], L[k : k + 1], 3).reshape(3, 8)[1]
    half = (L[k] - 1) / 2
    lo = int(np.floor(half))
    expected = X[k, lo] + (half - lo) * (X[k, min(lo + 1, L[k] - 1)] - X[k, lo])
    np.testing.assert_allclose(mid, expected, atol=1e-6)
    one = fs.sequence_vectors(X[:1], np.array([1]), 4).reshape(4, 8)  # length 1: the first step, repeated
    np.testing.assert_allclose(one, np.repeat(X[:1, 0], 4, 0))
    with pytest.raises(ValueError, match="n_steps"):
        fs.sequence_vectors(X, L, 0)


def test_loo_1nn_accuracy_against_a_brute_force_count():
    rng = np.random.default_rng(5)
    E, y = rng.normal(size=(60, 2)), rng.integers(0, 2, 60)
    hits = 0
    for i in range(60):
        d = [np.inf if j == i else np.linalg.norm(E[i] - E[j]) for j in range(60)]
        hits += y[int(np.argmin(d))] == y[i]
    assert fs.loo_1nn_accuracy(E, y) == pytest.approx(hits / 60)
    apart = np.r_[np.zeros((10, 2)), np.full((10, 2), 5.0)] + rng.normal(0, 0.1, (20, 2))
    assert fs.loo_1nn_accuracy(apart, np.r_[np.zeros(10), np.ones(10)]) == 1.0
    with pytest.raises(ValueError, match="labels"):
        fs.loo_1nn_accuracy(E, y[:5])
