"""The 8-feature format: range, padding, the exact inverse, the condition, and the long-sequence policy."""

from __future__ import annotations

import numpy as np
import pytest

from trajsynth.data.directory import load_meta, load_params, load_split, split_users
from trajsynth.data.embedded import load_embedded_segments
from trajsynth.data.features import (
    FEATURE_NAMES,
    N_FEATURES,
    NormalizationParams,
    condition_to_distance,
    distance_to_condition,
    features_to_paths,
    fit_params,
    pad_paths,
    paths_to_features,
    raw_kinematics,
)
from trajsynth.data.preprocess import PreprocessConfig, build_data_dir
from trajsynth.data.raw import read_log
from trajsynth.data.segment import Segment, SegmentConfig, SegmentStats, segment_log
from trajsynth.data.synthetic import minimum_jerk_path, synthetic_segments

TOL_PX, TOL_MS = 0.01, 0.01
T = 100


def fitted(paths, max_len=T) -> NormalizationParams:
    return fit_params(raw_kinematics(*pad_paths(paths, max_len)), 10.0, 3000.0)


def roundtrip_errors(paths, params, max_len=T):
    """Largest |error| in px and in ms of paths → features → paths, per path."""
    X, C, L = paths_to_features(paths, max_len, params)
    back = features_to_paths(X, C, L, params)
    assert [len(b) for b in back] == [len(p) for p in paths]
    rel = [p - p[:1] for p in paths]
    err_xy = np.array([np.abs(b[:, 1:] - r[:, 1:]).max() for b, r in zip(back, rel, strict=True)])
    err_t = np.array([np.abs(b[:, 0] - r[:, 0]).max() for b, r in zip(back, rel, strict=True)])
    return err_xy, err_t


@pytest.fixture(scope="module")
def synth_paths():
    return [s.points for s in synthetic_segments(300, seed=0)]


@pytest.fixture(scope="module")
def real_sapimouse_paths(sapimouse_raw):
    """A few hundred real movements from the first SapiMouse users."""
    paths = []
    for path in sorted(sapimouse_raw.glob("user*/*.csv.gz"))[:12]:
        log, _ = read_log(path)
        paths += [s.points for s in segment_log(log, "u", path.name, SegmentConfig(), SegmentStats())
                  if len(s.points) <= T]
    if len(paths) < 200:
        pytest.fail(f"expected a few hundred real SapiMouse movements, got {len(paths)}")
    return paths[:400]


# --------------------------------------------------------------------------- range and padding


def test_features_are_float32_in_range(synth_paths):
    X, C, L = paths_to_features(synth_paths, T, fitted(synth_paths))
    assert X.shape == (len(synth_paths), T, N_FEATURES) == (300, 100, 8) and len(FEATURE_NAMES) == 8
    assert X.dtype == np.float32 and C.dtype == np.float32 and L.dtype == np.int64
    assert np.isfinite(X).all() and np.abs(X).max() <= 1.0 and np.abs(C).max() <= 1.0
    assert L.tolist() == [len(p) for p in synth_paths]


def test_extreme_movements_stay_in_range(synth_paths):
    """Overshoots, hooks, huge speeds and long gaps are squashed or clipped, never outside [-1, 1]."""
    params = fitted(synth_paths)
    t = np.arange(8) * 17.0
    hook = np.column_stack([t, [0, 400, 900, 2000, 1500, 300, 40, 30], [0, 5, -300, -900, 20, 40, 10, 0]])
    teleport = np.array([[0, 0, 0], [1, 2500, 0], [2, 2400, 10], [900, 2400, 11], [901, 20, 0]], float)
    still = np.array([[0, 5, 5], [17, 5, 5], [34, 5, 5], [51, 30, 5]], float)  # still steps, then one jump
    X, _, L = paths_to_features([hook, teleport, still], T, params)
    assert np.isfinite(X).all() and np.abs(X).max() <= 1.0
    assert np.allclose(np.hypot(X[2, :4, 4], X[2, :4, 5]), 1.0)  # sin/cos stay a unit vector when still


def test_zero_padding_past_length(synth_paths):
    X, _, L = paths_to_features(synth_paths, T, fitted(synth_paths))
    past = np.arange(T)[None, :] >= L[:, None]
    assert past.any() and np.all(X[past] == 0)
    # inside the length the dt feature is never the padding value (-1 only at step 0)
    inside = ~past
    inside[:, 0] = False
    assert np.all(X[..., 7][inside] > -1)


def test_first_step_conventions(synth_paths):
    X, _, _ = paths_to_features(synth_paths, T, fitted(synth_paths))
    first = X[:, 0]
    assert np.all(first[:, [0, 1, 3, 6]] == 0)  # dx, dy, accel, angular velocity
    assert np.all(first[:, [2, 7]] == -1)  # speed 0 and dt 0 map to -1


def test_features_do_not_depend_on_the_origin(synth_paths):
    params = fitted(synth_paths)
    shifted = [p + np.array([12345.0, -700.0, 300.0]) for p in synth_paths[:20]]
    a, ca, _ = paths_to_features(synth_paths[:20], T, params)
    b, cb, _ = paths_to_features(shifted, T, params)
    assert np.allclose(a, b, atol=1e-6) and np.allclose(ca, cb)


def test_end_point_sits_on_the_unit_distance(synth_paths):
    """dx, dy are scaled by the movement's own distance: tan(π/2·f) of the end has norm 1."""
    X, _, L = paths_to_features(synth_paths, T, fitted(synth_paths))
    end = X[np.arange(len(L)), L - 1, :2].astype(np.float64)
    assert np.allclose(np.hypot(*np.tan(end * np.pi / 2).T), 1.0, atol=1e-5)


# --------------------------------------------------------------------------- the inverse


def test_round_trip_on_synthetic_paths(synth_paths):
    err_xy, err_t = roundtrip_errors(synth_paths, fitted(synth_paths))
    assert err_xy.max() < TOL_PX and err_t.max() < TOL_MS


def test_round_trip_on_paths_not_used_for_fitting(synth_paths):
    """Scales are fitted on training data; other movements of a similar kind invert just as well."""
    others = [s.points for s in synthetic_segments(100, seed=99, d_range=(10.5, 2900))]
    err_xy, err_t = roundtrip_errors(others, fitted(synth_paths))
    assert err_xy.max() < TOL_PX and err_t.max() < TOL_MS


def test_round_trip_on_real_sapimouse_segments(real_sapimouse_paths):
    params = fitted(real_sapimouse_paths)
    err_xy, err_t = roundtrip_errors(real_sapimouse_paths, params)
    assert err_xy.max() < TOL_PX, f"worst path error {err_xy.max():.4g} px"
    assert err_t.max() < TOL_MS, f"worst time error {err_t.max():.4g} ms"


def test_round_trip_on_real_embedded_movements():
    """The shipped SapiMouse sample (always present, unlike the full dataset) inverts exactly too."""
    paths = [s.points for s in load_embedded_segments() if len(s.points) <= T][:1500]
    assert len(paths) == 1500
    err_xy, err_t = roundtrip_errors(paths, fitted(paths))
    assert err_xy.max() < TOL_PX and err_t.max() < TOL_MS


def test_round_trip_through_a_data_directory(small_data_dir):
    """Stored features + condition reproduce the stored relative paths, in every split."""
    params = load_params(small_data_dir)
    for split in ("train", "val", "test"):
        s = load_split(small_data_dir, split)
        assert len(s) > 0
        back = features_to_paths(s.X, s.C, s.L, params)
        for i, b in enumerate(back):
            assert np.abs(b - s.path(i)).max() < TOL_PX, (split, i)


def test_inverse_starts_at_the_origin_for_generated_features(synth_paths):
    """Made-up features (as a generator would output) still give paths starting at (0, 0, 0)."""
    params = fitted(synth_paths)
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(5, 20, N_FEATURES)).astype(np.float32)
    back = features_to_paths(X, rng.uniform(-1, 1, 5), np.full(5, 20), params)
    assert all(np.array_equal(b[0], [0, 0, 0]) and np.all(np.diff(b[:, 0]) >= 0) for b in back)


# --------------------------------------------------------------------------- the condition


def test_condition_distance_inverse(synth_paths):
    params = fitted(synth_paths)
    d = np.geomspace(10, 3000, 50)
    c = distance_to_condition(d, params)
    assert c[0] == pytest.approx(-1) and c[-1] == pytest.approx(1) and np.all(np.diff(c) > 0)
    assert np.allclose(condition_to_distance(c, params), d, rtol=1e-12)
    cs = np.linspace(-1, 1, 21)
    assert np.allclose(distance_to_condition(condition_to_distance(cs, params), params), cs)
    # geometric midpoint of the range is condition 0
    assert distance_to_condition(np.sqrt(10 * 3000), params) == pytest.approx(0, abs=1e-12)


def test_condition_is_clipped_outside_the_range(synth_paths):
    params = fitted(synth_paths)
    assert distance_to_condition(np.array([1.0, 1e6]), params).tolist() == [-1, 1]


def test_condition_encodes_each_movements_distance(synth_paths):
    params = fitted(synth_paths)
    _, C, _ = paths_to_features(synth_paths, T, params)
    d = np.array([np.hypot(*(p[-1, 1:] - p[0, 1:])) for p in synth_paths])
    assert np.allclose(condition_to_distance(C, params), d, rtol=1e-5)


def test_normalization_params_dict_round_trip(synth_paths):
    params = fitted(synth_paths)
    assert NormalizationParams.from_dict(params.to_dict()) == params
    d = params.to_dict()
    del d["dt_max"]
    with pytest.raises(ValueError, match="dt_max"):
        NormalizationParams.from_dict(d)


# --------------------------------------------------------------------------- long sequences


@pytest.fixture(scope="module")
def mixed_length_segments():
    segs = synthetic_segments(150, seed=7, d_range=(20, 1500), n_users=6)
    n_long = sum(len(s.points) > 30 for s in segs)
    assert 10 < n_long < 140, "the fixture needs both short and long movements"
    return segs, n_long


def test_long_policy_drop(tmp_path, mixed_length_segments):
    segs, n_long = mixed_length_segments
    meta = build_data_dir(segs, tmp_path / "d", PreprocessConfig(max_seq_len=30, long_policy="drop"), {}, False)
    assert sum(meta["counts"].values()) == len(segs) - n_long
    assert meta["dropped_movements"]["more than 30 points"] == n_long and meta["resampled_movements"] == 0
    for split in ("train", "val", "test"):
        s = load_split(tmp_path / "d", split)
        assert s.X.shape[1] == 30 and (len(s) == 0 or s.L.max() <= 30)


def test_long_policy_resample(tmp_path, mixed_length_segments):
    segs, n_long = mixed_length_segments
    out = tmp_path / "r"
    meta = build_data_dir(segs, out, PreprocessConfig(max_seq_len=30, long_policy="resample"), {}, False)
    assert sum(meta["counts"].values()) == len(segs)
    assert meta["resampled_movements"] == n_long and "more than 30 points" not in meta["dropped_movements"]
    by_key = {(s.user, float(s.points[0, 1]), float(s.points[0, 2]), float(s.points[-1, 0] - s.points[0, 0])): s
              for s in segs}
    n_at_max = 0
    for split in ("train", "val", "test"):
        s = load_split(out, split)
        for i in range(len(s)):
            p = s.path(i)
            orig = by_key.get((str(s.user[i]), float(s.start_px[i, 0]), float(s.start_px[i, 1]), float(p[-1, 0])))
            assert orig is not None, f"{split}[{i}]: no original movement with this user, start and duration"
            rel = orig.points - orig.points[0]
            # start and end are kept exactly, so the distance (the condition) does not change
            assert np.allclose(p[-1], rel[-1], atol=1e-3) and np.array_equal(p[0], [0, 0, 0])
            if len(orig.points) > 30:
                n_at_max += 1
                assert s.L[i] == 30 and np.all(np.diff(p[:, 0]) > 0)
                # the kept points are points of the original path
                assert all(np.abs(rel - q).max(axis=1).min() < 1e-3 for q in p)
            else:
                assert s.L[i] == len(orig.points)
    assert n_at_max == n_long


@pytest.mark.parametrize("kw", [dict(long_policy="truncate"), dict(max_seq_len=2), dict(format="csv")])
def test_preprocess_config_rejects_nonsense(kw):
    with pytest.raises(ValueError):
        PreprocessConfig(**kw)


# --------------------------------------------------------------------------- regressions


def test_round_trip_holds_for_a_test_user_with_slower_sampling(tmp_path):
    rng = np.random.default_rng(0)
    users = [f"user{u}" for u in range(6)]
    test_user = split_users(users, 0.15, 0.15, seed=0)["test"][0]
    segs = []
    for u in users:
        hz = 30.0 if u == test_user else 60.0  # e.g. a slower logger on one machine
        for _ in range(20):
            pts = minimum_jerk_path(float(rng.uniform(50, 800)), float(rng.uniform(-3, 3)), rng, hz=hz)
            segs.append(Segment(pts, u, "s", "Left_click"))
    out = tmp_path / "d"
    build_data_dir(segs, out, PreprocessConfig(seed=0), {}, False)
    assert load_meta(out)["users"]["test"] == [test_user]
    s = load_split(out, "test")
    back = features_to_paths(s.X, s.C, s.L, load_params(out))
    assert max(np.abs(b[:, 0] - s.path(i)[:, 0]).max() for i, b in enumerate(back)) < TOL_MS


# --------------------------------------------------------------------------- paths from increments


def test_paths_from_increments_match_real_features_and_smooth_noisy_ones(synth_paths):
    params = fitted(synth_paths, max_len=T)
    X, C, L = paths_to_features(synth_paths, T, params)
    exact = features_to_paths(X, C, L, params)
    summed = features_to_paths(X, C, L, params, from_increments=True)
    err = np.array([np.abs(a[:, 1:] - b[:, 1:]).max() for a, b in zip(exact, summed, strict=True)])
    assert np.median(err) < 0.05 and all(np.allclose(a[-1], b[-1]) for a, b in zip(exact, summed, strict=True))
    # a decoder's small position errors: jitter in every step of the position path, none in the summed one
    noisy = X.copy()
    noisy[..., :2] += np.random.default_rng(0).normal(0, 0.02, X[..., :2].shape).astype(np.float32)
    jitter = lambda paths: np.median([np.abs(np.diff(p[:, 1:], 2, axis=0)).mean() for p in paths])  # noqa: E731
    from_pos = features_to_paths(noisy, C, L, params)
    from_steps = features_to_paths(noisy, C, L, params, from_increments=True)
    assert jitter(from_steps) < 0.25 * jitter(from_pos)
    assert all(np.allclose(a[-1], b[-1]) for a, b in zip(from_pos, from_steps, strict=True))  # same end points
