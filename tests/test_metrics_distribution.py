"""Distribution metrics: MMD, coverage / density, correlational score, W1, condition error, Context-FID."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trajsynth.data.features import fit_params, pad_paths, paths_to_features, raw_kinematics
from trajsynth.data.synthetic import synthetic_segments
from trajsynth.metrics.base import REGISTRY
from trajsynth.metrics.context_fid import SeriesEncoder, context_fid, frechet_distance
from trajsynth.metrics.distribution import (
    condition_error,
    correlational_score,
    coverage_density,
    length_distance,
    mmd_rbf,
    resample_sequences,
    sequence_mmd,
    wasserstein1,
)

# --------------------------------------------------------------------------- data


def sines(n: int, T: int = 60, F: int = 4, seed: int = 0, min_len: int = 20, equal: bool = False):
    """Sine waves with a random frequency and phase per series; feature f lags by 0.4·f rad.

    The shared phase makes the features strongly correlated with each other.
    """
    rng = np.random.default_rng(seed)
    L = np.full(n, T) if equal else rng.integers(min_len, T + 1, size=n)
    t = np.arange(T)[None, :, None]  # (1, T, 1)
    w = rng.uniform(0.1, 0.3, size=(n, 1, 1))
    phi = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    X = np.sin(w * t + phi + 0.4 * np.arange(F)[None, None, :]) + rng.normal(0, 0.05, size=(n, T, F))
    return zero_pad(X.astype(np.float32), L), L


def zero_pad(X: np.ndarray, L: np.ndarray) -> np.ndarray:
    valid = np.arange(X.shape[1])[None, :] < L[:, None]
    return np.where(valid[..., None], X, 0).astype(np.float32)


def garbage_pad(X: np.ndarray, L: np.ndarray, extra: int = 15, seed: int = 9) -> np.ndarray:
    """Same sequences, padded ``extra`` steps longer, with random values and NaN past each length."""
    rng = np.random.default_rng(seed)
    out = rng.normal(0, 5, size=(X.shape[0], X.shape[1] + extra, X.shape[2])).astype(np.float32)
    out[:, :: 3] = np.nan
    valid = np.arange(out.shape[1])[None, :] < L[:, None]
    out[valid] = np.pad(X, ((0, 0), (0, extra), (0, 0)))[valid]
    return out


def time_shuffled(X: np.ndarray, L: np.ndarray, seed: int = 1) -> np.ndarray:
    """Each series' valid steps in a random order: same marginals, no temporal structure."""
    rng = np.random.default_rng(seed)
    out = X.copy()
    for i, n in enumerate(L):
        out[i, :n] = X[i, rng.permutation(n)]
    return out


@pytest.fixture(scope="module")
def mouse():
    """600 synthetic mouse movements in the 8-feature format (lengths 14–65 of T = 100)."""
    paths = [s.points for s in synthetic_segments(600, seed=11)]
    P, L = pad_paths(paths, 100)
    params = fit_params(raw_kinematics(P, L), 10.0, 3000.0)
    X, _, L = paths_to_features(paths, 100, params)
    return X, L


@pytest.fixture(scope="module")
def encoder(mouse):
    X, L = mouse
    enc = SeriesEncoder(8)
    enc.fit(X[:300], L[:300], seed=0, iterations=80)
    return enc


# --------------------------------------------------------------------------- registry


def test_registered_metrics_have_the_declared_direction_and_bands():
    assert REGISTRY["mmd"].bands == (0.01, 0.05, 0.1) and REGISTRY["mmd"].direction == "lower"
    assert REGISTRY["mmd_latent"].band(0.03) == "Good"
    assert REGISTRY["coverage"].direction == "higher" and REGISTRY["coverage"].band(0.9) == "Excellent"
    assert REGISTRY["coverage"].band(0.4) == "Poor"
    assert REGISTRY["density"].ideal == 1.0 and REGISTRY["density"].bands is None
    assert REGISTRY["cond_rel_err_median"].band(0.07) == "Needs work"
    for name in ("correlational", "length_w1", "context_fid"):
        assert REGISTRY[name].direction == "lower" and REGISTRY[name].ideal == 0.0


# --------------------------------------------------------------------------- MMD


def test_mmd_hand_computed_two_points():
    # a = b = {0, 1}, σ = 1: k_aa = k_bb = e^-½ (off-diagonal only), k_ab = (2 + 2e^-½) / 4.
    a = np.array([[0.0], [1.0]])
    assert mmd_rbf(a, a, bandwidths=[1.0]) == pytest.approx(np.exp(-0.5) - 1.0, abs=1e-9)


def test_mmd_identical_sets_near_zero_and_symmetric():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 6)), rng.normal(0.5, 1.0, size=(250, 6))
    assert abs(mmd_rbf(a, a)) < 0.01  # unbiased: slightly negative, -O(1/n)
    assert mmd_rbf(a, b) == pytest.approx(mmd_rbf(b, a), rel=1e-9)
    assert mmd_rbf(a, b) > 0.05


def test_mmd_subsampling_is_seeded():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(500, 3)), rng.normal(0.2, 1.0, size=(500, 3))
    assert mmd_rbf(a, b, seed=3, max_n=100) == mmd_rbf(a, b, seed=3, max_n=100)
    assert mmd_rbf(a, b, seed=3, max_n=100) != mmd_rbf(a, b, seed=4, max_n=100)


def test_sequence_mmd_real_halves_near_zero_shifted_and_noise_far():
    X, L = sines(800, seed=0)
    real, other = (X[:400], L[:400]), (X[400:], L[400:])
    same = sequence_mmd(*real, *other)
    shifted = sequence_mmd(*real, zero_pad(other[0] + 0.3, other[1]), other[1])
    noise = sequence_mmd(*real, zero_pad(np.random.default_rng(2).normal(size=other[0].shape), other[1]), other[1])
    assert abs(same) < 0.002  # measured -0.0006
    assert shifted > 0.02 and noise > 0.02  # measured 0.040 and 0.029: RBF-MMD is compressed in 129 dimensions


def test_sequence_mmd_sees_length_distribution():
    X, L = sines(600, seed=0, min_len=20, T=60)
    short = np.minimum(L[300:], 25)  # same series cut short: same shapes over a shorter span, other lengths
    assert sequence_mmd(X[:300], L[:300], zero_pad(X[300:], short), short) > 0.02  # measured 0.027


def test_resample_keeps_ends_and_interpolates():
    X = np.zeros((2, 6, 1), np.float32)
    X[0, :3, 0] = [0.0, 2.0, 4.0]
    X[1, :1, 0] = 7.0
    out = resample_sequences(X, np.array([3, 1]), 5)
    np.testing.assert_allclose(out[0, :, 0], [0, 1, 2, 3, 4])
    np.testing.assert_allclose(out[1, :, 0], [7] * 5)


# --------------------------------------------------------------------------- coverage / density


def test_coverage_density_of_a_set_against_itself():
    a = np.random.default_rng(0).normal(size=(400, 4))
    out = coverage_density(a, a, k=5)
    assert out["coverage"] == 1.0
    assert out["density"] == pytest.approx(1.0)  # each open ball holds its centre and k - 1 neighbours


def test_coverage_collapses_under_mode_collapse():
    rng = np.random.default_rng(0)
    real, fresh = rng.normal(size=(500, 4)), rng.normal(size=(500, 4))
    collapsed = np.repeat(real.mean(0, keepdims=True), 500, axis=0)
    good = coverage_density(real, fresh)
    bad = coverage_density(real, collapsed)
    assert good["coverage"] > 0.9 and 0.7 < good["density"] < 1.3
    assert bad["coverage"] < 0.05


def test_density_drops_for_shifted_samples():
    rng = np.random.default_rng(0)
    real, far = rng.normal(size=(400, 4)), rng.normal(3.0, 1.0, size=(400, 4))
    assert coverage_density(real, far)["density"] < 0.1


# --------------------------------------------------------------------------- correlational score


def test_correlational_zero_on_identical_and_positive_when_decorrelated():
    X, L = sines(300, equal=True, seed=3)
    assert correlational_score(X, L, X, L) == 0.0
    rng = np.random.default_rng(0)
    shuffled = np.stack([X[rng.permutation(len(X)), :, f] for f in range(X.shape[2])], axis=-1)  # per feature
    score = correlational_score(X, L, shuffled, L)
    assert score > 0.1  # measured 0.44 for 4 features (6 pairs)


def test_correlational_real_halves_small():
    X, L = sines(600, seed=4)
    assert correlational_score(X[:300], L[:300], X[300:], L[300:]) < 0.02  # measured 0.002


# --------------------------------------------------------------------------- W1, lengths, conditions


def test_wasserstein1_hand_computed():
    # F_a = ½ on [0, 1), F_b = ⅔ on [0, 3): ∫|F_a - F_b| = ⅙·1 + ⅓·2 = 5/6.
    assert wasserstein1([0, 1], [0, 0, 3]) == pytest.approx(5 / 6)
    assert wasserstein1([0, 1, 3], [5, 6, 8]) == pytest.approx(5.0)
    assert wasserstein1([3, 1, 2], [2, 3, 1]) == 0.0


def test_wasserstein1_is_symmetric_and_shift_equivariant():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=37), rng.exponential(size=51)
    assert wasserstein1(a, b) == pytest.approx(wasserstein1(b, a))
    assert wasserstein1(a, a + 2.5) == pytest.approx(2.5)


def test_length_distance_steps_and_relative():
    out = length_distance([10, 20, 30], [15, 25, 35])
    assert out["length_w1"] == pytest.approx(5.0)
    assert out["length_w1_rel"] == pytest.approx(0.25)


def test_condition_error_from_distances_and_end_points():
    req = np.array([100.0, 200.0, 400.0])
    out = condition_error(req, [110.0, 200.0, 380.0])  # errors 0.10, 0, 0.05
    assert out["cond_rel_err_median"] == pytest.approx(0.05)
    assert out["cond_rel_err_p90"] == pytest.approx(0.09)
    ends = np.array([[66.0, 88.0], [0.0, -200.0], [380.0, 0.0]])  # |(66, 88)| = 110
    assert condition_error(req, ends) == pytest.approx(out)


# --------------------------------------------------------------------------- validation and padding


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda X, L: (X, L + 100), "lengths must lie"),
        (lambda X, L: (X[..., :2], L), "features per step"),
        (lambda X, L: (np.where(np.isfinite(X), X * np.nan, X), L), "NaN or Inf"),
        (lambda X, L: (X[:, :, 0], L), "must be"),
        (lambda X, L: (X[:0], L[:0]), "empty"),
    ],
)
def test_sequence_inputs_are_validated(bad, match):
    X, L = sines(20, seed=0)
    with pytest.raises(ValueError, match=match):
        sequence_mmd(X, L, *bad(X, L))


def test_vector_inputs_are_validated():
    with pytest.raises(ValueError, match="NaN"):
        mmd_rbf(np.array([[0.0], [np.nan]]), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="dimensions"):
        coverage_density(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="k must"):
        coverage_density(np.zeros((3, 2)), np.zeros((3, 2)), k=5)


def test_padding_content_and_amount_do_not_change_results(encoder, mouse):
    X, L = mouse
    Xa, La = X[300:400], L[300:400]
    Xg = garbage_pad(Xa, La)
    assert sequence_mmd(X[:100], L[:100], Xa, La) == sequence_mmd(X[:100], L[:100], Xg, La)
    assert correlational_score(X[:100], L[:100], Xa, La) == correlational_score(X[:100], L[:100], Xg, La)
    emb = encoder.encode(Xa, La)
    np.testing.assert_allclose(emb, encoder.encode(Xg, La), atol=1e-5)
    # One series per chunk: each padded only to its own length, not to the longest of 100.
    np.testing.assert_allclose(emb, encoder.encode(Xa, La, batch_size=1), atol=1e-5)


# --------------------------------------------------------------------------- Context-FID


def test_frechet_distance_known_gaussian_cases():
    a = np.random.default_rng(0).normal(size=(2000, 5)) @ np.diag([1.0, 2.0, 0.5, 1.0, 3.0])
    c = np.array([1.0, 0.0, -2.0, 0.5, 0.0])
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, a + c) == pytest.approx(float(c @ c), rel=1e-8)  # same covariance
    tr = float(np.trace(np.cov(a, rowvar=False)))
    assert frechet_distance(a, 2 * a) == pytest.approx(tr + float(np.sum(a.mean(0) ** 2)), rel=1e-6)


def test_context_fid_real_halves_small_shuffled_and_noise_large(encoder, mouse):
    X, L = mouse
    real, other = (X[:300], L[:300]), (X[300:], L[300:])
    same = context_fid(*real, *other, encoder=encoder)
    shuffled = context_fid(*real, time_shuffled(*other), other[1], encoder=encoder)
    noise_X = zero_pad(np.random.default_rng(5).uniform(-1, 1, size=other[0].shape), other[1])
    noise = context_fid(*real, noise_X, other[1], encoder=encoder)
    assert same < 0.5 * shuffled and same < 0.1 * noise, (same, shuffled, noise)


def test_encoder_fit_is_seeded_and_state_dict_round_trips(tmp_path, mouse):
    X, L = mouse[0][:64], mouse[1][:64]
    a, b = (SeriesEncoder(8, hidden_dims=16, output_dims=16, depth=2) for _ in range(2))
    a.fit(X, L, seed=1, iterations=5, batch_size=8)
    b.fit(X, L, seed=1, iterations=5, batch_size=8)
    np.testing.assert_array_equal(a.encode(X, L), b.encode(X, L))
    torch.save(a.state_dict(), tmp_path / "enc.pt")
    c = SeriesEncoder.from_state_dict(torch.load(tmp_path / "enc.pt", weights_only=True))
    np.testing.assert_array_equal(a.encode(X, L), c.encode(X, L))
    b.fit(X, L, seed=2, iterations=5, batch_size=8)
    assert not np.array_equal(a.encode(X, L), b.encode(X, L))


def test_encoder_refuses_before_fit_and_wrong_features(mouse):
    enc = SeriesEncoder(8, hidden_dims=8, output_dims=8, depth=1)
    with pytest.raises(RuntimeError, match="before fit"):
        enc.encode(*mouse)
    with pytest.raises(ValueError, match="features per step"):
        enc.fit(mouse[0][..., :3], mouse[1])
