"""The comparison figures: files written, never overwritten, inputs checked, the KDE, the
embeddings and the distance matching behind them.
"""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from trajsynth.data.features import FEATURE_NAMES, fit_params, pad_paths, paths_to_features, raw_kinematics
from trajsynth.data.sets import TrajectorySet
from trajsynth.data.synthetic import synthetic_segments
from trajsynth.figures import visualize_all
from trajsynth.figures.embedding import embed_sets, tsne_2d
from trajsynth.figures.features import density
from trajsynth.figures.output import figure_set, write_new
from trajsynth.figures.paths import end_distance, matched_pairs
from trajsynth.figures.quicklook import compare_paths, paths_figure
from trajsynth.metrics.features_stats import feature_stats, loo_1nn_accuracy, sequence_vectors

TS = "20240102_030405"
FIGURES = ["trajectory_comparison", "feature_kde", "feature_stats", "feature_correlation", "embedding_pca_tsne",
           "trajectories_3d"]


def make_set(n: int, seed: int, d_range=(20.0, 1200.0), params=None, name="real", T: int = 100):
    """Synthetic movements as a TrajectorySet (paths from (0, 0, 0)) through the real feature code."""
    paths = [s.points - s.points[0] for s in synthetic_segments(n, seed=seed, d_range=d_range)]
    paths = [p for p in paths if len(p) <= T]
    if params is None:
        P, L = pad_paths(paths, T)
        params = fit_params(raw_kinematics(P, L), 10.0, 3000.0)
    X, C, L = paths_to_features(paths, T, params)
    return TrajectorySet(X, L, C, paths, name=name), params


@pytest.fixture(scope="module")
def sets():
    real, params = make_set(90, seed=11)
    fake, _ = make_set(70, seed=12, d_range=(50.0, 600.0), params=params, name="generated")
    return real, fake


@pytest.fixture(scope="module")
def written(sets, tmp_path_factory):
    out = tmp_path_factory.mktemp("vis")
    return out, visualize_all(*sets, out, seed=0, timestamp=TS)


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
                    for d in feature_stats(real.X, real.L, fake.X, fake.L)]


def test_second_call_with_the_same_timestamp_keeps_the_first_files(written, sets):
    out, first = written
    before = {p: p.read_bytes() for p in first}
    second = visualize_all(*sets, out, timestamp=TS, max_tsne_per_set=30)
    assert [p.name for p in second] == [re.sub(r"\.(png|csv)$", r"_2.\1", p.name) for p in first]
    assert all(p.read_bytes() == b for p, b in before.items())  # the first files are untouched
    assert all(p.stat().st_size > 0 for p in second)


def test_write_new_never_replaces(tmp_path):
    a = write_new(tmp_path, "x", ".txt", b"one")
    b = write_new(tmp_path, "x", ".txt", b"two")
    c = write_new(tmp_path, "x", ".txt", b"three")
    assert [p.name for p in (a, b, c)] == ["x.txt", "x_2.txt", "x_3.txt"]
    assert [p.read_bytes() for p in (a, b, c)] == [b"one", b"two", b"three"]


# --------------------------------------------------------------------------- inputs


def test_inputs_must_be_sets_with_eight_features_and_paths(sets, tmp_path):
    real, fake = sets
    with pytest.raises(ValueError, match="YYYYmmdd_HHMMSS"):
        visualize_all(real, fake, tmp_path, timestamp="2024-01-02")
    with pytest.raises(TypeError, match="expected a TrajectorySet"):
        visualize_all((real.X, real.L, real.paths), fake, tmp_path)
    with pytest.raises(ValueError, match="generated: figures need pixel paths"):
        visualize_all(real, TrajectorySet(fake.X, fake.L), tmp_path)
    with pytest.raises(ValueError, match=r"real: figures need X of shape \(N, T, 8\)"):
        visualize_all(TrajectorySet(real.X[..., :5], real.L, paths=real.paths, name="real"), fake, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written for a refused input


def test_unnamed_sets_get_default_names(sets):
    real = sets[0]
    unnamed = TrajectorySet(real.X, real.L, real.C, real.paths)
    named = figure_set(unnamed, "generated")
    assert named.name == "generated" and unnamed.name == ""
    np.testing.assert_array_equal(named.X, real.X)
    assert figure_set(real, "other") is real


# --------------------------------------------------------------------------- numbers


def test_kde_integrates_to_one_and_uses_scotts_bandwidth():
    rng = np.random.default_rng(0)
    v = np.r_[rng.normal(-0.5, 0.1, 400), rng.normal(0.4, 0.2, 600)]
    grid = np.linspace(-2, 2, 4001)
    d = density(v, grid)
    assert np.trapezoid(d, grid) == pytest.approx(1.0, abs=1e-3)
    h = v.std(ddof=1) * len(v) ** -0.2  # Scott's rule in one dimension
    direct = np.exp(-0.5 * ((grid[:, None] - v[None]) / h) ** 2).sum(1) / (len(v) * h * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(d, direct, rtol=1e-9, atol=1e-12)
    assert d[np.argmin(np.abs(grid + 0.5))] > 3 * d[np.argmin(np.abs(grid))]  # two modes, a valley between
    fine = np.linspace(-0.01, 0.01, 4001)  # constant data: a narrow normal, still a density
    assert np.trapezoid(density(np.zeros(50), fine), fine) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="finite"):
        density(np.array([0.0, np.nan]), grid)


def test_tsne_separates_two_gaussian_clusters_deterministically():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, (120, 10)), rng.normal(0, 1, (120, 10)) + 8.0 / np.sqrt(10)
    Z, y = np.concatenate([a, b]), np.r_[np.zeros(120), np.ones(120)]
    E, perplexity = tsne_2d(Z, n_iter=300, seed=0)
    assert E.shape == (240, 2) and np.isfinite(E).all() and perplexity == 30.0
    assert loo_1nn_accuracy(E, y) > 0.95
    np.testing.assert_array_equal(E, tsne_2d(Z, n_iter=300, seed=0)[0])
    assert tsne_2d(Z[:31], n_iter=250)[1] == pytest.approx(10.0)  # capped at (n - 1) / 3
    with pytest.raises(ValueError, match="250 iterations"):
        tsne_2d(Z, n_iter=100)


def test_embedding_separates_different_sets_and_mixes_one_set(sets):
    real, fake = sets
    shifted = TrajectorySet(np.clip(real.X + 0.5 * (real.X != 0), -1, 1), real.L, real.C, real.paths, name="shift")
    apart = embed_sets(real, shifted, seed=0, tsne_iter=300)
    assert apart.pca.shape == apart.tsne.shape == (2 * len(real), 2)
    acc = apart.nn_accuracy()
    assert acc["pca"] > 0.85 and acc["tsne"] > 0.95
    halves = embed_sets(real.subset(np.arange(0, len(real), 2)), real.subset(np.arange(1, len(real), 2)),
                        seed=0, tsne_iter=300)
    assert max(halves.nn_accuracy().values()) < 0.75
    capped = embed_sets(real, fake, max_per_set=30, seed=1, tsne_iter=250)
    assert np.bincount(capped.labels).tolist() == [30, 30] and capped.perplexity == pytest.approx(59 / 3)


def test_embedding_pca_is_the_principal_component_scores(sets):
    real, fake = sets
    emb = embed_sets(real, fake, seed=0, tsne_iter=250)
    Z = np.concatenate([sequence_vectors(real.X, real.L), sequence_vectors(fake.X, fake.L)])
    U, S, _ = np.linalg.svd(Z - Z.mean(0), full_matrices=False)
    ref = U[:, :2] * S[:2]
    signs = np.sign((emb.pca * ref).sum(0))
    np.testing.assert_allclose(emb.pca, ref * signs, atol=1e-6)
    np.testing.assert_allclose(emb.pca_ratio, S[:2] ** 2 / (S**2).sum(), rtol=1e-9)


def test_matched_pairs_pick_similar_distances(sets):
    real, fake = sets
    pairs = matched_pairs(real, fake, 6, seed=0)
    assert len({j for _, j in pairs}) == 6
    d_r = end_distance([real.paths[i] for i, _ in pairs])
    d_f = end_distance([fake.paths[j] for _, j in pairs])
    rand = end_distance(fake.paths)
    # matched partners are closer in log distance than the median random partner
    assert np.median(np.abs(np.log(d_f / d_r))) < np.median(np.abs(np.log(rand[:, None] / d_r[None])))


# --------------------------------------------------------------------------- quick look


def test_compare_paths_writes_one_png_in_place(sets, tmp_path):
    real, fake = sets
    out = compare_paths(real.paths, fake.paths, tmp_path / "sub" / "paths.png", n=5)
    assert out == tmp_path / "sub" / "paths.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["paths.png"]  # no temporary file left
    fig = paths_figure(real.paths, fake.paths, n=5, fake_name="generated")
    assert [len(ax.lines) for ax in fig.axes] == [10, 10, 5, 5]  # 5 paths + 5 end markers, 5 speed curves


def test_real_and_generated_panels_share_their_axis_limits(sets):
    real, fake = sets
    far = [np.column_stack([p[:, 0], 3 * p[:, 1], 3 * p[:, 2]]) for p in fake.paths]  # a wider spread than real
    fig = paths_figure(real.paths, far, n=5)
    fig.canvas.draw()
    paths_real, paths_fake, speed_real, speed_fake = fig.axes
    assert paths_real.get_xlim() == paths_fake.get_xlim() and paths_real.get_ylim() == paths_fake.get_ylim()
    assert speed_real.get_xlim() == speed_fake.get_xlim() and speed_real.get_ylim() == speed_fake.get_ylim()
    lo, hi = paths_fake.get_xlim()
    xs = np.concatenate([p[:, 1] for p in far[:5]])
    assert lo <= xs.min() and xs.max() <= hi  # the wider set fits
    top, bottom = paths_real.get_ylim()
    assert top > bottom  # y grows downwards, as on the screen
