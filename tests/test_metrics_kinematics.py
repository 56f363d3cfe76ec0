"""Kinematic features, Fitts's-law fits, the real-vs-generated report and the kinematic detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trajsynth.data.directory import load_split
from trajsynth.data.embedded import load_embedded_segments
from trajsynth.data.preprocess import PreprocessConfig, preprocess
from trajsynth.data.synthetic import minimum_jerk_path
from trajsynth.metrics.base import REGISTRY
from trajsynth.metrics.detector import MedianLogScaler, detector_from_features, feature_matrix, kinematic_detector
from trajsynth.metrics.distribution import wasserstein1
from trajsynth.metrics.kinematics import (
    FEATURES,
    fitts_regression,
    kinematic_features,
    kinematics_report,
)

# --------------------------------------------------------------------------- helpers


def line(distance: float = 500.0, duration: float = 1000.0, dt: float = 10.0, angle: float = 0.0) -> np.ndarray:
    """A straight movement at constant speed, one sample every dt ms."""
    t = np.arange(0.0, duration + dt / 2, dt)
    s = distance * t / duration
    return np.column_stack([t, s * np.cos(angle), s * np.sin(angle)])


def min_jerk_progress(tau: np.ndarray) -> np.ndarray:
    return 10 * tau**3 - 15 * tau**4 + 6 * tau**5


def bell(distance: float = 400.0, duration: float = 600.0, dt: float = 5.0) -> np.ndarray:
    """A straight minimum-jerk reach along x: one bell-shaped speed profile peaking at mid-time."""
    t = np.arange(0.0, duration + dt / 2, dt)
    return np.column_stack([t, distance * min_jerk_progress(t / duration), np.zeros_like(t)])


def two_bumps(gap_ms: float) -> np.ndarray:
    """Two 400 ms minimum-jerk reaches of 200 px along x, the second starting gap_ms after the first."""
    t = np.arange(0.0, 400.0 + gap_ms + 2.5, 5.0)
    first = min_jerk_progress(np.clip(t / 400.0, 0, 1))
    second = min_jerk_progress(np.clip((t - gap_ms) / 400.0, 0, 1))
    return np.column_stack([t, 200 * (first + second), np.zeros_like(t)])


@pytest.fixture(scope="module")
def real_paths() -> list[np.ndarray]:
    """The embedded SapiMouse movements, relative to their starts."""
    return [s.points - s.points[0] for s in load_embedded_segments()]


def straight_twins(paths: list[np.ndarray]) -> list[np.ndarray]:
    """For each path, a straight constant-speed line with its end point, duration and sample count."""
    out = []
    for p in paths:
        t = np.linspace(0.0, p[-1, 0], len(p))
        s = t / max(p[-1, 0], 1e-9)
        out.append(np.column_stack([t, s * p[-1, 1], s * p[-1, 2]]))
    return out


# --------------------------------------------------------------------------- features


def test_straight_constant_speed_line():
    f = kinematic_features([line(500, 1000)])
    assert f["distance"][0] == pytest.approx(500)
    assert f["movement_time"][0] == pytest.approx(1000)
    assert f["path_efficiency"][0] == pytest.approx(1.0)
    assert f["peak_speed"][0] == pytest.approx(0.5, rel=1e-6)
    assert f["mean_curvature"][0] == pytest.approx(0.0, abs=1e-12)
    assert f["mean_abs_jerk"][0] == pytest.approx(0.0, abs=1e-9)
    assert f["submovements"][0] == 1
    assert f["overshoot"][0] == 0


def test_bell_profile_peaks_at_mid_time_with_one_submovement():
    f = kinematic_features([bell(400, 600)])
    assert f["peak_speed_time"][0] == pytest.approx(0.5, abs=0.03)
    # The minimum-jerk peak speed is 1.875 · D / T; the 50 ms box lowers it only a little.
    assert f["peak_speed"][0] == pytest.approx(1.875 * 400 / 600, rel=0.03)
    assert f["submovements"][0] == 1
    assert f["mean_abs_jerk"][0] > 0


def test_going_past_the_target_and_back_is_an_overshoot():
    past = np.array([[0, 0, 0], [100, 60, 0], [200, 120, 3], [300, 110, 1], [400, 100, 0]], float)
    within = np.array([[0, 0, 0], [100, 60, 0], [200, 101.5, 0], [300, 100, 0]], float)  # 1.5 px < 2 px
    f = kinematic_features([past, within])
    assert f["overshoot"].tolist() == [1.0, 0.0]
    assert f["path_efficiency"][0] < 0.9  # the way back costs path length


def test_two_speed_bumps_are_two_submovements():
    f = kinematic_features([two_bumps(gap_ms=400.0), two_bumps(gap_ms=250.0), two_bumps(gap_ms=60.0)])
    # Separate bumps and overlapping bumps with a clear valley count twice; bumps 60 ms apart merge.
    assert f["submovements"].tolist() == [2.0, 2.0, 1.0]


def test_small_wiggles_below_the_threshold_are_not_submovements():
    def rippled(amplitude_px: float) -> np.ndarray:
        p = bell(400, 600, dt=5.0)
        p[:, 1] += amplitude_px * np.sin(2 * np.pi * p[:, 0] / 120.0)
        return p

    # 0.6 px: a speed ripple of ~2 % of the peak; 6 px: ~20 %, well above the 10 % threshold.
    small, large = kinematic_features([rippled(0.6), rippled(6.0)])["submovements"]
    assert small == 1 and large >= 3


def test_curvature_of_a_turn():
    # 100 px east, then 100 px north: one 90° turn over 200 px of path.
    p = np.array([[0, 0, 0], [100, 50, 0], [200, 100, 0], [300, 100, 50], [400, 100, 100]], float)
    assert kinematic_features([p])["mean_curvature"][0] == pytest.approx((np.pi / 2) / 200)


def test_features_of_a_batch_equal_features_of_each_path(real_paths):
    paths = real_paths[:40] + [line(), bell(), np.zeros((1, 3))]
    together = kinematic_features(paths)
    for i in (0, 17, 39, 40, 41, 42):
        alone = kinematic_features([paths[i]])
        for name in FEATURES:
            assert together[name][i] == pytest.approx(alone[name][0], rel=1e-9, abs=1e-12), (i, name)


def test_degenerate_paths_give_finite_values():
    paths = [
        np.zeros((1, 3)),  # a single point
        np.zeros((4, 3)),  # repeated points
        np.array([[0, 0, 0], [0, 5, 0], [0, 9, 2]], float),  # zero duration, moving
        np.array([[0, 0, 0], [10, 4, 0], [10, 8, 0], [10, 8, 0], [30, 20, 0]], float),  # zero-dt steps
        np.array([[0, 0, 0], [50, 30, 0], [100, 0, 0]], float),  # back to the start: distance 0
    ]
    f = kinematic_features(paths)
    for name, v in f.items():
        assert v.shape == (len(paths),) and np.isfinite(v).all(), name
    assert f["path_efficiency"][0] == 1 and f["path_efficiency"][4] == 0
    assert f["overshoot"][4] == 0 and f["submovements"][0] == 0
    assert ((f["peak_speed_time"] >= 0) & (f["peak_speed_time"] <= 1)).all()


@pytest.mark.parametrize(
    "paths, match",
    [
        ([], "empty"),
        ([np.zeros((3, 2))], "shape"),
        ([np.zeros((0, 3))], "shape"),
        ([np.zeros((2, 3)), np.array([[0, 0, 0], [1, np.nan, 0]])], "path 1 contains NaN"),
        ([np.array([[0, 0, 0], [10, 1, 0], [5, 2, 0]], float)], "decreasing"),
    ],
)
def test_bad_paths_are_refused(paths, match):
    with pytest.raises(ValueError, match=match):
        kinematic_features(paths)


def test_real_movements_look_human(real_paths):
    f = kinematic_features(real_paths)
    assert all(np.isfinite(v).all() for v in f.values())
    assert 1.2 < f["submovements"].mean() < 4  # corrective sub-movements are common
    assert 0.25 < f["peak_speed_time"].mean() < 0.55  # the peak comes before mid-movement
    assert 0.6 < np.median(f["path_efficiency"]) < 1.0


# --------------------------------------------------------------------------- Fitts's law


def test_fitts_recovers_exact_parameters():
    d = np.array([20.0, 60.0, 140.0, 300.0, 620.0])
    mt = 150 + 120 * np.log2(d / 20 + 1)
    fit = fitts_regression(d, mt, width_px=20)
    assert fit["slope"] == pytest.approx(120) and fit["intercept"] == pytest.approx(150)
    assert fit["r2"] == pytest.approx(1.0)


def test_fitts_recovers_the_parameters_of_synthetic_movements():
    rng = np.random.default_rng(0)
    dist = np.exp(rng.uniform(np.log(20), np.log(1200), 1500))
    paths = [minimum_jerk_path(d, rng.uniform(-np.pi, np.pi), rng, fitts_a=150, fitts_b=120, width=20)
             for d in dist]
    f = kinematic_features(paths)
    fit = fitts_regression(f["distance"], f["movement_time"], width_px=20)
    # Durations are scaled by U(0.8, 1.25) (mean 1.025) and rounded to 60 Hz frames.
    assert fit["slope"] == pytest.approx(120 * 1.025, rel=0.06)
    assert fit["intercept"] == pytest.approx(150 * 1.025, abs=25)
    assert 0.7 < fit["r2"] < 1.0
    binned = fitts_regression(f["distance"], f["movement_time"], width_px=20, bins=15)
    assert binned["r2"] > 0.97 and binned["slope"] == pytest.approx(fit["slope"], rel=0.05)


def test_fitts_refuses_bad_input():
    with pytest.raises(ValueError, match="same index of difficulty"):
        fitts_regression([100, 100, 100], [300, 400, 500])
    with pytest.raises(ValueError, match="values"):
        fitts_regression([100, 200], [300])
    with pytest.raises(ValueError, match="finite"):
        fitts_regression([100, np.nan], [300, 400])


# --------------------------------------------------------------------------- report


def test_wasserstein1_exact_values():
    assert wasserstein1([0.0], [1.0]) == pytest.approx(1.0)
    assert wasserstein1([0.0, 1.0], [0.5]) == pytest.approx(0.5)
    a = np.random.default_rng(0).normal(size=300)
    assert wasserstein1(a, a + 2.5) == pytest.approx(2.5)
    b = np.random.default_rng(1).normal(size=170)
    grid = np.linspace(-6, 6, 200001)  # ∫ |F_a − F_b| dx, an independent formula
    cdf = lambda v: np.searchsorted(np.sort(v), grid, side="right") / len(v)  # noqa: E731
    assert wasserstein1(a, b) == pytest.approx(np.trapezoid(np.abs(cdf(a) - cdf(b)), grid), rel=1e-3)


def test_report_halves_close_and_time_stretch_far(real_paths):
    idx = np.random.default_rng(0).permutation(len(real_paths))
    half_a = [real_paths[i] for i in idx[: len(idx) // 2]]
    half_b = [real_paths[i] for i in idx[len(idx) // 2:]]
    stretched = [p * np.array([2.0, 1.0, 1.0]) for p in half_b]  # same shapes, twice as slow
    same, slow = kinematics_report(half_a, half_b), kinematics_report(half_a, stretched)
    assert all(np.isfinite(v) for v in same.values()) and set(same) == set(slow)
    for name in ("movement_time", "peak_speed", "mean_abs_jerk"):
        assert slow[f"w1_{name}"] > 8 * same[f"w1_{name}"], name
    assert same["w1_path_efficiency"] < 0.03
    assert same["fitts_slope_diff"] < 20 and slow["fitts_slope_diff"] > 50
    assert slow["fitts_slope_fake"] == pytest.approx(2 * slow["fitts_slope_real"], rel=0.2)
    assert same["overshoot_rate_real"] == pytest.approx(same["overshoot_rate_fake"], abs=0.05)


def test_headline_metrics_are_registered():
    for name in [f"w1_{f}" for f in FEATURES] + ["fitts_slope_diff", "kinematic_detector_acc"]:
        assert name in REGISTRY and REGISTRY[name].direction == "lower"
    acc = REGISTRY["kinematic_detector_acc"]
    assert acc.ideal == 0.5 and acc.band(0.52) == "Excellent" and acc.band(0.8) == "Poor"


# --------------------------------------------------------------------------- detector


def test_detector_cannot_tell_two_halves_of_real_data(real_paths):
    idx = np.random.default_rng(1).permutation(len(real_paths))[:1600]
    r = kinematic_detector([real_paths[i] for i in idx[:800]], [real_paths[i] for i in idx[800:]])
    assert 0.4 < r["accuracy_mean"] < 0.6
    assert r["kinematic_detector_acc"] == r["accuracy_mean"] and r["n_per_class"] == 800


def test_detector_spots_straight_constant_speed_lines(real_paths):
    real = real_paths[:700]
    r = kinematic_detector(real, straight_twins(real[:500]), folds=4)
    assert r["accuracy_mean"] > 0.9
    assert r["logistic_accuracy_mean"] > 0.85 and r["boosted_accuracy_mean"] > 0.9
    assert r["n_per_class"] == 500  # balanced by subsampling the real side


def test_detector_trees_find_a_nonlinear_difference():
    # Same mean and spread in every feature, but one is bimodal: only the trees can see it.
    rng = np.random.default_rng(0)
    real = rng.normal(size=(600, len(FEATURES))) + 5
    fake = real.copy()
    fake[:, 2] = 5 + rng.choice([-1.0, 1.0], 600) + rng.normal(0, 0.1, 600)
    r = detector_from_features(real, fake, folds=4, seed=0)
    assert r["logistic_accuracy_mean"] < 0.62 and r["boosted_accuracy_mean"] > 0.7


def test_detector_is_deterministic(real_paths):
    feats = feature_matrix(real_paths[:400])
    fake = feats * np.array([1, 1.1] + [1] * (len(FEATURES) - 2))
    a, b = detector_from_features(feats, fake, seed=3), detector_from_features(feats, fake, seed=3)
    assert a == b
    assert detector_from_features(feats, fake, seed=4) != a  # the seed picks the folds


def test_log_scaler_divides_by_training_medians_of_positive_values():
    x = np.array([[1.0, 10.0, -3.0], [3.0, 20.0, 0.0], [5.0, 0.0, 2.0]])
    scaler = MedianLogScaler((0, 1)).fit(x)
    np.testing.assert_allclose(scaler.scale_, [3.0, 15.0])  # the 0 in column 1 is not positive: left out
    np.testing.assert_allclose(scaler.transform(np.array([[6.0, -1.0, 7.0]])), [[np.log1p(2.0), 0.0, 7.0]])
    np.testing.assert_array_equal(MedianLogScaler().fit_transform(x), x)


def test_detector_refuses_bad_input():
    ok = np.ones((20, len(FEATURES)))
    with pytest.raises(ValueError, match="per class"):
        detector_from_features(ok, ok[:5], folds=5)
    with pytest.raises(ValueError, match="shape"):
        detector_from_features(ok[:, :3], ok)
    with pytest.raises(ValueError, match="NaN"):
        detector_from_features(ok, np.full_like(ok, np.nan))
    with pytest.raises(ValueError, match="folds"):
        detector_from_features(ok, ok, folds=1)


# --------------------------------------------------------------------------- real SapiMouse (slow)


@pytest.mark.slow
def test_real_sapimouse_train_vs_test_users(tmp_path):
    """Real vs real across users: the detector's floor and the Fitts fits of both user groups."""
    raw = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sapimouse"
    if not raw.is_dir():
        pytest.skip(f"../shared/datasets absent: {raw} not found")
    preprocess(raw, tmp_path / "data", PreprocessConfig(), workers=2, progress=False)
    train, test = (load_split(tmp_path / "data", s) for s in ("train", "test"))
    p_train = [train.path(i) for i in range(len(train))]
    p_test = [test.path(i) for i in range(len(test))]
    r = kinematic_detector(p_train, p_test)
    assert r["accuracy_mean"] < 0.62  # different people, same kind of movement
    rep = kinematics_report(p_train, p_test)
    for side in ("real", "fake"):
        assert 40 < rep[f"fitts_slope_{side}"] < 160 and rep[f"fitts_r2_{side}"] > 0.02
