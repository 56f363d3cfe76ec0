"""Discriminative and predictive scores: sanity checks on sine data, lengths, determinism, errors.

The classifiers are trained for fewer iterations than the protocols prescribe to keep the suite
fast; the checks hold with margin at these budgets (the full-budget figures are in the module
docstrings and the slow test).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from trajsynth.data.timeseries import load_benchmark, sine_windows
from trajsynth.metrics.base import REGISTRY
from trajsynth.metrics.discriminative import GRUReadout, check_sequences, discriminative_score
from trajsynth.metrics.predictive import predictive_score

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
N = 1500  # sequences per class (a 600-sequence test split keeps chance-level noise near ±0.02)


def shuffle_time(X: np.ndarray, L: np.ndarray, seed: int) -> np.ndarray:
    """Permute each sequence's valid steps at random; padding stays in place."""
    rng = np.random.default_rng(seed)
    keys = rng.random(X.shape[:2])  # (N, T)
    keys[np.arange(X.shape[1])[None, :] >= L[:, None]] = np.inf  # padding sorts last
    return np.take_along_axis(X, np.argsort(keys, axis=1)[..., None], axis=1)


def garbage_padding(X: np.ndarray, L: np.ndarray, seed: int) -> np.ndarray:
    """X with large random values written past each length."""
    pad = np.arange(X.shape[1])[None, :, None] >= L[:, None, None]
    noise = np.random.default_rng(seed).normal(0, 50, X.shape).astype(np.float32)
    return np.where(pad, noise, X)


@pytest.fixture(scope="module")
def sines():
    """Two disjoint halves of one sine set, with variable lengths in [12, 24] and zero padding."""
    X = sine_windows(2 * N, seed=11)
    L = np.random.default_rng(12).integers(12, 25, size=2 * N)
    X = np.where(np.arange(24)[None, :, None] < L[:, None, None], X, 0).astype(np.float32)
    return X[:N], L[:N], X[N:], L[N:]


# --------------------------------------------------------------------------- discriminative


def test_registered_with_converted_bands():
    for name in ("disc_timegan", "disc_strong"):
        info = REGISTRY[name]
        assert info.direction == "lower" and info.ideal == 0.0 and info.bands == (0.05, 0.15, 0.25)
        assert info.band(0.03) == "Excellent" and info.band(0.2) == "Needs work" and info.band(0.3) == "Poor"
    assert REGISTRY["pred_tstr"].bands == (0.1, 0.5, 1.0)
    assert REGISTRY["pred_original"].bands is None


def test_real_vs_real_is_near_zero(sines):
    ra, la, rb, lb = sines
    score = discriminative_score(ra, la, rb, lb, protocol="strong", iterations=60)
    assert len(score.values) == 1
    assert score.mean < 0.06, score  # measured 0.017


def test_time_shuffled_is_caught_by_strong(sines):
    ra, la, rb, lb = sines
    score = discriminative_score(ra, la, shuffle_time(rb, lb, 3), lb, protocol="strong", iterations=60)
    assert score.mean >= 0.25, score  # measured 0.477; 0.487 for the timegan protocol at 2000 iterations


@pytest.mark.parametrize("protocol,iterations", [("strong", 30), ("timegan", 600)])
def test_uniform_noise_is_caught(sines, protocol, iterations):
    ra, la, _, lb = sines
    noise = np.random.default_rng(4).random((N, 24, 5)).astype(np.float32)
    score = discriminative_score(ra, la, noise, lb, protocol=protocol, iterations=iterations)
    assert score.mean >= 0.45, score  # measured 0.49 (strong, 30) and 0.497 (timegan, 600)


def test_padding_content_and_width_do_not_matter(sines):
    ra, la, rb, lb = sines
    base = discriminative_score(ra, la, rb, lb, iterations=60, seed=5)
    wide = np.pad(garbage_padding(rb, lb, 6), ((0, 0), (0, 16), (0, 0)), constant_values=7.0)  # T = 40
    other = discriminative_score(garbage_padding(ra, la, 7), la, wide, lb, iterations=60, seed=5)
    assert other.values == base.values


def test_classifier_reads_the_last_valid_step():
    torch.manual_seed(0)
    model = GRUReadout(3, 8, layers=2)
    x = torch.randn(4, 10, 3)
    lengths = torch.tensor([1, 4, 7, 10])
    y = model.last(x, lengths)
    x2 = x.clone()
    for i, n in enumerate(lengths):
        x2[i, n:] = 100.0  # padding changed
    assert torch.allclose(model.last(x2, lengths), y)
    x3 = x.clone()
    x3[1, 3] += 1.0  # the last valid step of sequence 1 changed
    assert not torch.allclose(model.last(x3, lengths)[1], y[1])


def test_discriminative_is_deterministic(sines):
    ra, la, rb, lb = sines
    noisy = rb + np.random.default_rng(8).normal(0, 0.05, rb.shape).astype(np.float32)
    a = discriminative_score(ra, la, noisy, lb, iterations=50, seed=3, repeats=2)
    b = discriminative_score(ra, la, noisy, lb, iterations=50, seed=3, repeats=2)
    assert a.values == b.values


def test_bigger_class_is_subsampled(sines):
    ra, la, rb, lb = sines
    score = discriminative_score(ra, la, rb[:40], lb[:40], protocol="timegan", iterations=20)
    assert 0.0 <= score.mean <= 0.5


@pytest.mark.parametrize("change,match", [
    (lambda X, L: (X[0], L), "must be \\(N, T, F\\)"),
    (lambda X, L: (X, L[:-1]), "L must be"),
    (lambda X, L: (X, np.where(np.arange(len(L)) == 0, 25, L)), "lengths must lie in"),
    (lambda X, L: (X, np.where(np.arange(len(L)) == 0, 0, L)), "lengths must lie in"),
    (lambda X, L: (X, L + 0.5), "whole numbers"),
    (lambda X, L: (np.where(np.arange(24)[None, :, None] == 0, np.nan, X), L), "NaN or Inf"),
    (lambda X, L: (X[:, :, :0], L), "empty"),
    (lambda X, L: (X[:5], L[:5]), "at least 10"),
    (lambda X, L: (X[:, :, :3], L), "features"),
])
def test_discriminative_rejects_bad_input(sines, change, match):
    ra, la, rb, lb = sines
    fx, fl = change(rb, lb)
    with pytest.raises(ValueError, match=match):
        discriminative_score(ra, la, fx, fl, iterations=1)


def test_discriminative_rejects_bad_options(sines):
    ra, la, rb, lb = sines
    with pytest.raises(ValueError, match="unknown protocol"):
        discriminative_score(ra, la, rb, lb, protocol="weak")
    with pytest.raises(ValueError, match="repeats"):
        discriminative_score(ra, la, rb, lb, repeats=0)
    with pytest.raises(ValueError, match="iterations"):
        discriminative_score(ra, la, rb, lb, iterations=0)
    with pytest.raises(ValueError, match="iterations"):
        discriminative_score(ra, la, rb, lb, iterations=2.5)
    with pytest.raises(ValueError, match="num_threads"):
        discriminative_score(ra, la, rb, lb, iterations=1, num_threads=0)


def test_nan_in_padding_is_ignored():
    X = np.zeros((3, 5, 2), np.float32)
    X[:, 3:] = np.nan
    Xc, L = check_sequences(X, np.array([3, 3, 2]), "x")
    assert np.all(np.isfinite(Xc)) and L.dtype == np.int64


# --------------------------------------------------------------------------- predictive


def test_original_beats_noise_training(sines):
    ra, la, rb, lb = sines
    original = predictive_score(ra, la, rb, lb, iterations=400, seed=0)
    noise = np.random.default_rng(9).random(ra.shape).astype(np.float32)
    tstr_noise = predictive_score(noise, la, rb, lb, iterations=400, seed=0)
    assert original.mean < 0.2, original
    assert tstr_noise.mean > original.mean + 0.05, (original, tstr_noise)


def test_predictive_ignores_padding_and_short_sequences(sines):
    ra, la, rb, lb = sines
    base = predictive_score(ra, la, rb, lb, iterations=30, seed=2)
    la1 = la.copy()
    extra = np.concatenate([ra, np.full((5, 24, 5), 0.3, np.float32)])  # 5 single-step sequences
    other = predictive_score(garbage_padding(extra, np.concatenate([la1, np.ones(5, int)]), 1),
                             np.concatenate([la1, np.ones(5, int)]), garbage_padding(rb, lb, 2), lb,
                             iterations=30, seed=2)
    assert other.values == pytest.approx(base.values, abs=1e-6)


def test_predictive_is_deterministic_and_seed_dependent(sines):
    ra, la, rb, lb = sines
    a = predictive_score(ra, la, rb, lb, iterations=30, seed=1, repeats=2)
    b = predictive_score(ra, la, rb, lb, iterations=30, seed=1, repeats=2)
    assert a.values == b.values and a.values[0] != a.values[1]


def test_output_squashing_follows_the_target_range():
    # Last feature constant at -0.5: a sigmoid can never reach it, tanh (chosen by "auto") can.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.uniform(-1, 1, (64, 8, 2)), np.full((64, 8, 1), -0.5)], axis=2).astype(np.float32)
    L = np.full(64, 8)
    forced = predictive_score(X, L, X, L, iterations=300, output="sigmoid")
    auto = predictive_score(X, L, X, L, iterations=300)
    assert forced.mean >= 0.5
    assert auto.mean < 0.25, auto


def test_predictive_rejects_bad_input(sines):
    ra, la, rb, lb = sines
    with pytest.raises(ValueError, match="at least 2 features"):
        predictive_score(ra[:, :, :1], la, rb[:, :, :1], lb, iterations=1)
    with pytest.raises(ValueError, match="features"):
        predictive_score(ra, la, rb[:, :, :4], lb, iterations=1)
    with pytest.raises(ValueError, match="no sequence has 2 or more steps"):
        predictive_score(ra, np.ones_like(la), rb, lb, iterations=1)
    with pytest.raises(ValueError, match="iterations"):
        predictive_score(ra, la, rb, lb, iterations=None)
    with pytest.raises(ValueError, match="unknown output"):
        predictive_score(ra, la, rb, lb, output="relu")
    with pytest.raises(ValueError, match="NaN or Inf"):
        predictive_score(ra, la, np.full_like(rb, np.inf), lb)


@pytest.mark.slow
def test_stocks_original_row_matches_the_paper():
    """TimeGAN paper, Table 2: the predictive score of the original Stocks data is 0.036."""
    if not (SHARED / "timegan" / "stock_data.csv").is_file():
        pytest.skip(f"../shared/datasets absent: no {SHARED / 'timegan' / 'stock_data.csv'}")
    X, _ = load_benchmark("stocks", SHARED / "timegan", seed=0)
    L = np.full(len(X), X.shape[1])
    n = int(0.8 * len(X))
    t0 = time.time()
    score = predictive_score(X[:n], L[:n], X[n:], L[n:], iterations=5000, seed=0)
    print(f"stocks original predictive score {score} in {time.time() - t0:.1f} s")
    assert abs(score.mean - 0.036) < 0.003, score
