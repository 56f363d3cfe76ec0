"""Tests of the comparison figures: files written, numbers behind them, embeddings, KDE."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest
import torch

from trajsynth.data.features import FEATURE_NAMES, fit_params, pad_paths, paths_to_features, raw_kinematics
from trajsynth.data.synthetic import synthetic_segments
from trajsynth.metrics import visualize as vis
from trajsynth.metrics.visualize import TrajectorySet

TS = "20240102_030405"
FIGURES = ["trajectory_comparison", "feature_kde", "feature_stats", "feature_correlation", "embedding_pca_tsne",
           "trajectories_3d"]


def make_set(n: int, seed: int, d_range=(20.0, 1200.0), params=None, name="real", T: int = 100):
    """Synthetic movements as (X, L, paths from (0, 0, 0)) through the real feature code."""
    paths = [s.points - s.points[0] for s in synthetic_segments(n, seed=seed, d_range=d_range)]
    paths = [p for p in paths if len(p) <= T]
    if params is None:
        P, L = pad_paths(paths, T)
        params = fit_params(raw_kinematics(P, L), 10.0, 3000.0)
    X, _, L = paths_to_features(paths, T, params)
    return TrajectorySet(X, L, paths, name), params


@pytest.fixture(scope="module")
def sets():
    real, params = make_set(90, seed=11)
    fake, _ = make_set(70, seed=12, d_range=(50.0, 600.0), params=params, name="generated")
    return real, fake


@pytest.fixture(scope="module")
def written(sets, tmp_path_factory):
    out = tmp_path_factory.mktemp("vis")
    return out, vis.visualize_all(*sets, out, seed=0, timestamp=TS)


# --------------------------------------------------------------------------- files


def test_visualize_all_writes_every_figure_and_the_csv(written):
    out, paths = written
    expected = [f"{n}_{TS}.png" for n in FIGURES]
    expected.insert(3, f"feature_stats_{TS}.csv")
    assert [p.name for p in paths] == expected
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left behind
    for p in paths:
        assert p.parent == out and p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert p.stat().st_size > 20_000, f"{p.name} looks blank"


def test_csv_matches_a_direct_numpy_computation(written, sets):
    real, fake = sets
    rows = list(csv.DictReader(open(written[1][3])))
    assert [r["feature"] for r in rows] == list(FEATURE_NAMES)
    for s, key in ((real, "real"), (fake, "synthetic")):
        V = np.concatenate([s.X[i, : s.L[i]] for i in range(len(s))]).astype(np.float64)  # valid steps
        np.testing.assert_allclose([float(r[f"{key}_mean"]) for r in rows], V.mean(0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose([float(r[f"{key}_std"]) for r in rows], V.std(0), rtol=1e-9, atol=1e-12)
    for r in rows:
        rm, fm, rs = float(r["real_mean"]), float(r["synthetic_mean"]), float(r["real_std"])
        assert float(r["mean_rel_diff_pct"]) == pytest.approx(100 * (fm - rm) / abs(rm))
        assert float(r["std_rel_diff_pct"]) == pytest.approx(100 * (float(r["synthetic_std"]) - rs) / rs)
        assert float(r["mean_diff_over_std"]) == pytest.approx((fm - rm) / rs)
    assert rows == [{k: (repr(v) if isinstance(v, float) else v) for k, v in d.items()}
                    for d in vis.feature_stats(real, fake)]


def test_second_call_with_the_same_timestamp_keeps_the_first_files(written, sets):
    out, first = written
    before = {p: p.read_bytes() for p in first}
    second = vis.visualize_all(*sets, out, timestamp=TS, max_tsne_per_set=30)
    assert [p.name for p in second] == [re.sub(r"\.(png|csv)$", r"_2.\1", p.name) for p in first]
    assert all(p.read_bytes() == b for p, b in before.items())  # the first files are untouched
    assert all(p.stat().st_size > 0 for p in second)


def test_write_new_never_replaces(tmp_path):
    a = vis.write_new(tmp_path, "x", ".txt", b"one")
    b = vis.write_new(tmp_path, "x", ".txt", b"two")
    c = vis.write_new(tmp_path, "x", ".txt", b"three")
    assert [p.name for p in (a, b, c)] == ["x.txt", "x_2.txt", "x_3.txt"]
    assert [p.read_bytes() for p in (a, b, c)] == [b"one", b"two", b"three"]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda X, L, P: (X[:0], L[:0], P[:0]), "empty"),
        (lambda X, L, P: (np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), L, P), "NaN"),
        (lambda X, L, P: (X, L[:-1], P), "L must have shape"),
        (lambda X, L, P: (X[..., :5], L, P), "must have shape"),
        (lambda X, L, P: (X, L, P[:-1]), "paths for"),
        (lambda X, L, P: (X, L + 200, P), "lengths must lie"),
        (lambda X, L, P: (X, L, [P[0][:, :2]] + P[1:]), "path 0"),
    ],
)
def test_bad_inputs_raise_clear_errors(sets, mutate, message):
    s = sets[0]
    with pytest.raises(ValueError, match=message):
        TrajectorySet(*mutate(s.X, s.L, list(s.paths)))


def test_bad_timestamp_and_tuple_inputs(sets, tmp_path):
    real, fake = sets
    with pytest.raises(ValueError, match="YYYYmmdd_HHMMSS"):
        vis.visualize_all(real, fake, tmp_path, timestamp="2024-01-02")
    with pytest.raises(ValueError, match="X, L, paths"):
        vis.visualize_all((real.X, real.L), fake, tmp_path)
    rows = vis.feature_stats((real.X, real.L, real.paths), (fake.X, fake.L, fake.paths))
    assert rows == vis.feature_stats(real, fake)


# --------------------------------------------------------------------------- numbers


def test_kde_integrates_to_one_and_matches_scott():
    rng = np.random.default_rng(0)
    v = np.r_[rng.normal(-0.5, 0.1, 400), rng.normal(0.4, 0.2, 600)]
    grid = np.linspace(-2, 2, 4001)
    d = vis.gaussian_kde(v, grid)
    assert np.trapezoid(d, grid) == pytest.approx(1.0, abs=1e-3)
    assert vis.scott_bandwidth(v) == pytest.approx(v.std() * len(v) ** -0.2)
    one = vis.gaussian_kde(np.array([0.3]), grid, bandwidth=0.5)  # a single kernel is a normal pdf
    np.testing.assert_allclose(one, np.exp(-0.5 * ((grid - 0.3) / 0.5) ** 2) / (0.5 * np.sqrt(2 * np.pi)))
    fine = np.linspace(-0.01, 0.01, 4001)  # constant data: a narrow floor bandwidth, still a density
    assert np.trapezoid(vis.gaussian_kde(np.zeros(50), fine), fine) == pytest.approx(1.0, abs=1e-3)


def test_pca_matches_numpy_svd():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 5.0
    scores, ratio = vis.pca(Z, 3)
    U, S, _ = np.linalg.svd(Z - Z.mean(0), full_matrices=False)
    ref = U[:, :3] * S[:3]
    signs = np.sign((scores * ref).sum(0))
    assert np.all(np.abs(signs) == 1)
    np.testing.assert_allclose(scores, ref * signs, atol=1e-9)
    eig = np.sort(np.linalg.eigvalsh(np.cov(Z, rowvar=False)))[::-1]
    np.testing.assert_allclose(ratio, eig[:3] / eig.sum(), rtol=1e-9)


def loo_1nn(E: np.ndarray, y: np.ndarray) -> float:
    D = np.linalg.norm(E[:, None] - E[None], axis=-1)
    np.fill_diagonal(D, np.inf)
    return float((y[D.argmin(1)] == y).mean())


def test_tsne_separates_two_gaussian_clusters():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, (120, 10)), rng.normal(0, 1, (120, 10)) + 8.0 / np.sqrt(10)
    Z, y = np.concatenate([a, b]), np.r_[np.zeros(120), np.ones(120)]
    E = vis.tsne(Z, n_iter=300, seed=0)
    assert E.shape == (240, 2) and np.isfinite(E).all() and E.std() > 1.0
    assert loo_1nn(E, y) > 0.95
    assert vis.loo_1nn_accuracy(E, y) == pytest.approx(loo_1nn(E, y))
    np.testing.assert_array_equal(E, vis.tsne(Z, n_iter=300, seed=0))  # deterministic


def test_tsne_affinities_match_a_row_by_row_perplexity_search():
    Z = np.random.default_rng(3).normal(size=(150, 5))
    with vis._torch_threads(1):
        P = vis._tsne_affinities(torch.cdist(torch.from_numpy(Z), torch.from_numpy(Z)).pow(2), 30.0).numpy()
    D = ((Z[:, None] - Z[None]) ** 2).sum(-1)
    n, cond = len(Z), np.zeros((150, 150))
    for i in range(n):  # reference: a plain bisection per row on β until the entropy is log(30)
        d = np.delete(D[i], i)
        lo, hi = 1e-10, 1e10
        for _ in range(100):
            beta = np.sqrt(lo * hi)
            p = np.exp(-beta * (d - d.min()))
            p /= p.sum()
            lo, hi = (beta, hi) if -(p * np.log(np.maximum(p, 1e-300))).sum() > np.log(30) else (lo, beta)
        cond[i, np.arange(n) != i] = p
    np.testing.assert_allclose(P, (cond + cond.T) / (2 * n), atol=1e-8)
    assert P.sum() == pytest.approx(1.0) and np.all(np.diag(P) == 0)


def test_sequence_vectors_resample_the_valid_part(sets):
    s = sets[0]
    V = vis.sequence_vectors(s, 16).reshape(len(s), 16, 8)
    np.testing.assert_allclose(V[:, 0], s.X[:, 0], atol=1e-6)
    np.testing.assert_allclose(V[:, -1], s.X[np.arange(len(s)), s.L - 1], atol=1e-6)
    one = TrajectorySet(s.X[:1], np.array([1]), s.paths[:1])  # length 1: the first step, repeated
    np.testing.assert_allclose(vis.sequence_vectors(one, 4).reshape(4, 8), np.repeat(s.X[:1, 0], 4, 0))


def test_matched_pairs_pick_similar_distances(sets):
    real, fake = sets
    pairs = vis.matched_pairs(real, fake, 6, seed=0)
    assert len({j for _, j in pairs}) == 6
    d_r = vis._end_distance([real.paths[i] for i, _ in pairs])
    d_f = vis._end_distance([fake.paths[j] for _, j in pairs])
    rand = vis._end_distance(fake.paths)
    # matched partners are closer in log distance than the median random partner
    assert np.median(np.abs(np.log(d_f / d_r))) < np.median(np.abs(np.log(rand[:, None] / d_r[None])))
