"""The procedural family's model, fitted on the embedded SapiMouse sample."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from trajsynth.config import ConfigError
from trajsynth.data.directory import load_params, load_split
from trajsynth.data.embedded import embedded_data_dir
from trajsynth.data.features import condition_to_distance, features_to_paths
from trajsynth.metrics.kinematics import fitts_regression, kinematic_features
from trajsynth.models.procedural import ProceduralConfig, ProceduralModel

N = 600  # generated movements per check


@pytest.fixture(scope="module")
def data():
    d = embedded_data_dir()
    return load_split(d, "train"), load_split(d, "test"), load_params(d)


@pytest.fixture(scope="module")
def fitted(data):
    train, _, params = data
    model = ProceduralModel(ProceduralConfig(calibration_movements=500))
    figures = model.fit([train.path(i) for i in range(len(train))], train.C, params)
    return model, figures


def _conditions(split, n: int, seed: int = 0) -> torch.Tensor:
    idx = np.random.default_rng(seed).choice(len(split), n, replace=len(split) < n)
    return torch.as_tensor(split.C[idx]).reshape(-1, 1)


def _inner_intervals(paths: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.diff(p[1:-1, 0]) for p in paths if len(p) > 3])


def test_fit_gives_finite_buffers_and_sensible_figures(fitted, data):
    model, figures = fitted
    assert model.fitted
    for name, buf in model.named_buffers():
        assert torch.isfinite(buf.double()).all(), name
    assert 0 < figures["fitts_b_ms_per_bit"] < 500 and -500 < figures["fitts_a_ms"] < 1000
    assert 0.05 < figures["overshoot_rate"] < 0.8
    assert 1.0 < figures["submovements_mean"] < 4.0
    assert 10 <= figures["motion_interval_median_ms"] <= 25  # a 60 Hz logger ticks every 16-17 ms
    assert figures["movements"] == len(data[0])
    assert model.params == data[2]
    assert (torch.diff(model.bin_edges) >= 0).all()


def test_generate_shapes_integer_pixels_and_padding(fitted, data):
    model, _ = fitted
    X, L = model.generate(N, _conditions(data[1], N), torch.Generator().manual_seed(1))
    T = model.cfg.max_seq_len
    assert X.shape == (N, T, 8) and X.dtype == torch.float32 and L.dtype == torch.int64
    assert int(L.min()) >= 3 and int(L.max()) <= T
    past = torch.arange(T)[None, :] >= L[:, None]
    assert (X[past] == 0).all() and X.abs().max() <= 1
    paths = model.generate_paths(N, _conditions(data[1], N), torch.Generator().manual_seed(1))
    assert [len(p) for p in paths] == L.tolist()
    for p in paths:
        assert (p[0] == 0).all() and (p == np.round(p)).all() and (np.diff(p[:, 0]) > 0).all()


def test_intervals_come_from_the_training_histograms(fitted, data):
    model, _ = fitted
    train = data[0]
    paths = model.generate_paths(N, _conditions(data[1], N), torch.Generator().manual_seed(2))
    unthinned = [p for p in paths if len(p) < model.cfg.max_seq_len]
    support = set((np.flatnonzero(model.dt_hist.numpy()) + 1).tolist())
    assert set(_inner_intervals(unthinned).astype(int).tolist()) <= support
    real_first = {float(train.path(i)[1, 0]) for i in range(len(train))}
    real_last = {float(np.diff(train.path(i)[-2:, 0])[0]) for i in range(len(train))}
    assert {float(p[1, 0]) for p in unthinned} <= real_first
    assert {float(p[-1, 0] - p[-2, 0]) for p in unthinned} <= real_last


def test_end_point_within_a_pixel_of_the_requested_distance(fitted, data):
    model, _ = fitted
    c = _conditions(data[1], N)
    paths = model.generate_paths(N, c, torch.Generator().manual_seed(3))
    requested = condition_to_distance(c.numpy()[:, 0], data[2])
    reached = np.array([np.hypot(*p[-1, 1:]) for p in paths])
    assert np.abs(reached - requested).max() <= np.sqrt(2) / 2 + 1e-6


def test_features_invert_to_the_generated_paths(fitted, data):
    model, _ = fitted
    c = _conditions(data[1], N)
    X, L = model.generate(N, c, torch.Generator().manual_seed(4))
    paths = model.generate_paths(N, c, torch.Generator().manual_seed(4))
    back = features_to_paths(X.numpy(), c.numpy(), L.numpy(), data[2])
    assert max(np.abs(a - b).max() for a, b in zip(back, paths, strict=True)) < 0.01


def test_same_generator_state_same_output(fitted, data):
    model, _ = fitted
    c = _conditions(data[1], N)
    X1, L1 = model.generate(N, c, torch.Generator().manual_seed(5))
    X2, L2 = model.generate(N, c, torch.Generator().manual_seed(5))
    X3, _ = model.generate(N, c, torch.Generator().manual_seed(6))
    assert torch.equal(X1, X2) and torch.equal(L1, L2)
    assert not torch.equal(X1, X3)


def test_state_dict_round_trip_generates_identically(fitted, data):
    model, _ = fitted
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = ProceduralModel(model.cfg)
    assert not fresh.fitted
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert fresh.fitted
    c = _conditions(data[1], N)
    a = model.generate(N, c, torch.Generator().manual_seed(7))
    b = fresh.generate(N, c, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_long_movements_are_thinned_keeping_both_ends(fitted, data):
    model, _ = fitted
    short = ProceduralModel(ProceduralConfig(max_seq_len=20))
    short.load_state_dict(model.state_dict())
    c = _conditions(data[1], N)
    full = model.generate_paths(N, c, torch.Generator().manual_seed(8))
    thin = short.generate_paths(N, c, torch.Generator().manual_seed(8))
    assert max(len(p) for p in thin) == 20 and sum(len(p) > 20 for p in full) > 0
    for a, b in zip(full, thin, strict=True):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[-1], b[-1])
        if len(a) <= 20:
            assert np.array_equal(a, b)


def test_generated_fitts_slope_within_a_quarter_of_the_real_one(fitted, data):
    model, _ = fitted
    train = data[0]
    real = kinematic_features([train.path(i) for i in range(len(train))])
    fake = kinematic_features(model.generate_paths(len(train), torch.as_tensor(train.C).reshape(-1, 1),
                                                   torch.Generator().manual_seed(9)))
    slope_real = fitts_regression(real["distance"], real["movement_time"])["slope"]
    slope_fake = fitts_regression(fake["distance"], fake["movement_time"])["slope"]
    assert slope_real > 20
    assert abs(slope_fake - slope_real) <= 0.25 * slope_real


def test_generate_before_fit_raises():
    with pytest.raises(RuntimeError, match="before fit"):
        ProceduralModel(ProceduralConfig()).generate(4, torch.zeros(4, 1))


def test_fit_rejects_movements_it_cannot_measure(data):
    _, _, params = data
    model = ProceduralModel(ProceduralConfig(n_distance_bins=2))
    with pytest.raises(ValueError, match="n >= 3"):
        model.fit([np.zeros((2, 3))], np.zeros(1), params)
    back_to_start = np.array([[0, 0, 0], [16, 5, 5], [33, 0, 0]], float)
    with pytest.raises(ValueError, match="distance is 0"):
        model.fit([back_to_start, back_to_start], np.zeros(2), params)


@pytest.mark.parametrize("bad", [
    {"feature_dim": 6}, {"condition_dim": 2}, {"max_seq_len": 2}, {"n_distance_bins": 0}, {"records_per_bin": 0},
    {"dt_max_ms": 1}, {"max_submovements": 0}, {"fitts_width_px": 0.0}, {"correction_gain": 1.0},
    {"correction_speed": 0.0}, {"correction_drift": 1.5}, {"speed_wobble": 1.0}, {"wobble_period_ms": [200.0, 100.0]},
    {"jitter_px": -1.0}, {"direction_jitter_deg": 200.0}, {"calibration_movements": 5},
])
def test_bad_config_values_raise(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        ProceduralConfig(**bad)
