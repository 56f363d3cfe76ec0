"""The sampler and the export format, on a fitted procedural model (seconds to fit, any family behaves alike)."""

from __future__ import annotations

import numpy as np
import pytest

import trajsynth
from trajsynth.data.embedded import embedded_data_dir
from trajsynth.data.train_data import load_train_data
from trajsynth.evaluation.sources import samples_set
from trajsynth.models.checkpoint import CheckpointError
from trajsynth.serving.export import describe, write_samples
from trajsynth.training.loop import Trainer
from trajsynth.training.setup import build_run_config


@pytest.fixture(scope="module")
def sampler(tmp_path_factory):
    data = load_train_data(embedded_data_dir())
    run = build_run_config("procedural", "tiny", {}, data.train.max_len)
    run_dir = tmp_path_factory.mktemp("procedural")
    final = Trainer(run, data, run_dir, tensorboard=False, progress=False, log_lines=False).train()
    return trajsynth.load(final)


def test_generate_is_seeded_and_consistent(sampler):
    g = sampler.generate(50, distance_px=300, seed=5)
    h = sampler.generate(50, distance_px=300, seed=5)
    assert np.array_equal(g.X, h.X) and np.array_equal(g.L, h.L)
    assert not np.array_equal(g.X, sampler.generate(50, distance_px=300, seed=6).X)
    assert len(g) == 50 and np.allclose(g.distance_px, 300)
    assert [len(p) for p in g.paths] == list(g.L)  # X and the pixel paths describe the same movements
    ends = np.array([np.hypot(*p[-1, 1:]) for p in g.paths])
    assert np.all(np.abs(ends - 300) <= 1.0)  # the procedural model ends on the requested pixel


def test_distances_are_drawn_like_training_when_not_given(sampler):
    d = sampler.generate(500, seed=0).distance_px
    lo, hi = sampler.distance_range
    assert lo <= d.min() and d.max() <= hi and d.std() > 0


def test_path_starts_and_ends_where_asked(sampler):
    for start, end in (((0, 0), (400, 0)), ((500, 500), (100, 200)), ((3.5, 7.25), (-90, 60))):
        p = sampler.path(start, end, seed=1)
        assert np.allclose(p[0, 1:], start) and np.array_equal(p[-1, 1:], end)
        assert p[0, 0] == 0 and np.all(np.diff(p[:, 0]) >= 0)


def test_paths_batch_ends_where_asked_and_a_batch_of_one_is_path(sampler):
    starts = np.array([[0, 0], [500, 500], [3.5, 7.25]])
    ends = np.array([[400, 0], [100, 200], [-90, 60]])
    P = sampler.paths(starts, ends, seed=3)
    assert len(P) == 3
    for p, s, e in zip(P, starts, ends, strict=True):
        assert np.allclose(p[0, 1:], s) and np.array_equal(p[-1, 1:], e) and p[0, 0] == 0
    assert all(np.array_equal(a, b) for a, b in zip(P, sampler.paths(starts, ends, seed=3), strict=True))
    assert np.array_equal(sampler.paths(starts[1:2], ends[1:2], seed=9)[0], sampler.path(starts[1], ends[1], seed=9))
    with pytest.raises(ValueError, match=r"^pair 1: start and end coincide at \(5, 5\)"):
        sampler.paths([[0, 0], [5, 5]], [[100, 0], [5, 5]])
    with pytest.raises(ValueError, match=r"^starts and ends must both have shape \(n, 2\) with n >= 1"):
        sampler.paths([[0, 0]], [[100, 0], [5, 5]])


def test_bad_requests_are_refused(sampler):
    with pytest.raises(ValueError, match="trained range"):
        sampler.sample(1, distance_px=1e7)
    with pytest.raises(ValueError, match="n must be >= 1"):
        sampler.generate(0)


WRONG_VALUES = [  # (call, message): ValueError, the value is wrong
    (lambda s: s.path(start=(100, 100), end=(100, 100)),
     r"start and end coincide at \(100, 100\): a path needs a distance in \[10, 3000\] px"),
    (lambda s: s.path(start=(1, 2, 3), end=(100, 100)), r"start must be two numbers \(x, y\), got \(1, 2, 3\)"),
    (lambda s: s.path(start=(0, 0), end=[5]), r"end must be two numbers \(x, y\), got \[5\]"),
    (lambda s: s.path(start=(float("nan"), 0), end=(100, 100)), r"start must be finite, got \(nan, 0\)"),
    (lambda s: s.path(start=(0, 0), end=(np.inf, 100)), r"end must be finite, got \(inf, 100\)"),
    (lambda s: s.path(start=(0, 0), end=(5000, 0)), r"start and end are 5000 px apart, outside the model's trained "
                                                    r"range \[10, 3000\] px"),
    (lambda s: s.sample(1, distance_px=np.nan), "distance_px must be finite, got nan"),
    (lambda s: s.sample(3, distance_px=[100, 200]), r"distance_px must be one distance or n = 3 distances, got shape"),
    (lambda s: s.sample(0), "n must be >= 1, got 0"),
    (lambda s: s.sample(2, seed=-1), "seed must be >= 0, got -1"),
]
WRONG_TYPES = [  # (call, message): TypeError, the type is wrong
    (lambda s: s.sample(2.5), "n must be an integer, got 2.5"),
    (lambda s: s.sample(True), "n must be an integer, got True"),
    (lambda s: s.sample(1, distance_px="400"), "distance_px must be a number or an array of numbers, got '400'"),
    (lambda s: s.sample(2, seed=1.5), "seed must be an integer, got 1.5"),
    (lambda s: s.path(start="ab", end=(1, 2)), r"start must be two numbers \(x, y\), got 'ab'"),
    (lambda s: s.path(start=None, end=(1, 2)), r"start must be two numbers \(x, y\), got None"),
]


@pytest.mark.parametrize(("call", "message"), WRONG_VALUES)
def test_wrong_values_are_value_errors_in_our_words(sampler, call, message):
    with pytest.raises(ValueError, match=f"^{message}") as e:
        call(sampler)
    assert not isinstance(e.value, TypeError)


@pytest.mark.parametrize(("call", "message"), WRONG_TYPES)
def test_wrong_types_are_type_errors_in_our_words(sampler, call, message):
    with pytest.raises(TypeError, match=f"^{message}$"):
        call(sampler)


def test_numpy_numbers_and_per_movement_distances_are_fine(sampler):
    g = sampler.generate(np.int64(3), distance_px=np.array([100.0, 200, 300]), seed=np.int64(4))
    assert np.allclose(g.distance_px, [100, 200, 300], rtol=1e-4)
    p = sampler.path(np.array([10, 20]), [310.5, 20], seed=0)
    assert np.array_equal(p[-1, 1:], [310.5, 20])


def test_export_round_trip_and_never_overwrites(sampler, tmp_path):
    g = sampler.generate(20, seed=2)
    out = write_samples(tmp_path / "s.npz", g)
    back = samples_set(out)
    assert np.array_equal(back.X, g.X) and np.array_equal(back.L, g.L)
    assert all(np.allclose(a, b, atol=1e-3) for a, b in zip(back.paths, g.paths, strict=True))
    with pytest.raises(FileExistsError):
        write_samples(out, g)
    with pytest.raises(ValueError, match="must end in .npz"):
        write_samples(tmp_path / "s.csv", g)
    assert describe(g).startswith("20 trajectories")


def test_unfinished_checkpoint_is_not_a_model(tmp_path):
    data = load_train_data(embedded_data_dir())
    run = build_run_config("latent_wgan", "tiny", {"stage1_threshold": 0.0}, data.train.max_len)
    tr = Trainer(run, data, tmp_path, tensorboard=False, progress=False, log_lines=False)
    tr.train(until="stage1")
    with pytest.raises(CheckpointError, match=r"not a finished model \(phases done: stage1\)"):
        trajsynth.load(tmp_path / "stage1_final.pt")
