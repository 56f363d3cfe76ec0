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


def test_bad_requests_are_refused(sampler):
    with pytest.raises(ValueError, match="trained range"):
        sampler.sample(1, distance_px=1e7)
    with pytest.raises(ValueError, match="n must be >= 1"):
        sampler.generate(0)


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
