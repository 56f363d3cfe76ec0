"""The event clock: fitting a logger's frame clock, and rendering continuous paths onto it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trajsynth.data.clock import EventClock


def logged(n_frames: int, frame_ms: tuple[int, ...], rng: np.random.Generator, speed: float = 2.0) -> np.ndarray:
    """A movement as a logger on frames of ``frame_ms`` records it: release, first report, moves, press."""
    dt = rng.choice(frame_ms, size=n_frames)
    t = 150 + np.concatenate([[0], np.cumsum(dt)])  # (n_frames + 1,) first report at 150 ms
    x = np.round(speed * (t - 150))
    body = np.column_stack([t, x, np.zeros_like(x)])
    return np.vstack([[0, 0, 0], body, [t[-1] + 60, x[-1], 0]]).astype(float)


@pytest.fixture
def clock() -> EventClock:
    rng = np.random.default_rng(0)
    paths = [logged(20, (16, 17), rng) for _ in range(90)] + [logged(40, (8,), rng) for _ in range(10)]
    return EventClock.fit(paths)


@pytest.fixture
def bare(clock) -> EventClock:
    """The clock without the training waits (as recorded before they were): generated waits are kept."""
    return dataclasses.replace(clock, lead_ms=None, press_ms=None)


def test_fit_finds_each_clock_and_its_share(clock):
    assert clock.group_ms.tolist() in ([8.0, 16.0], [8.0, 17.0])  # 16 and 17-ms medians are one 60 Hz clock
    assert np.allclose(clock.group_p, [0.1, 0.9])
    sixty = clock.tick_p[1]
    assert set(np.flatnonzero(sixty) + 1) == {16, 17} and clock.tick_p[0, 7] == 1.0
    assert clock.still_p == 0.0  # every report in these movements moved
    # each movement's waits: a still report at 150 ms, the first move one frame later, the press 60 ms after
    assert np.all(clock.lead_ms[:, 0] == 150) and np.all(np.isin(clock.lead_ms[:, 1], [158, 166, 167]))
    assert np.all(clock.press_ms == 60) and len(clock.press_ms) == 100


def test_round_trip_through_a_dict(clock):
    again = EventClock.from_dict(clock.to_dict())
    assert np.array_equal(again.tick_p, clock.tick_p) and again.still_p == clock.still_p
    assert np.array_equal(again.lead_ms, clock.lead_ms) and np.array_equal(again.press_ms, clock.press_ms)
    old = {k: v for k, v in clock.to_dict().items() if k not in ("lead_ms", "press_ms")}
    assert EventClock.from_dict(old).lead_ms is None  # a clock recorded before the waits were


def test_render_logs_whole_ms_and_px_on_the_clock(bare):
    clock = bare
    smooth = np.column_stack([np.linspace(0, 700, 50), np.linspace(0, 301.3, 50) ** 1.01, np.linspace(0, -40.6, 50)])
    smooth[1:, 0] += 100.4  # a first report 100.4 ms after the release
    out = clock.render([smooth] * 20, max_len=100, rng=np.random.default_rng(1))
    for p in out:
        assert np.array_equal(p, np.round(p)) and np.all(np.diff(p[:, 0]) >= 0)
        assert np.array_equal(p[0], [0, 0, 0]) and p[1, 0] == round(smooth[1, 0])
        assert np.array_equal(p[-1, 1:], np.round(smooth[-1, 1:]))
        # every report lies on the movement's frame grid (8 ms, or 16.5 ms with a jitter that does not add up)
        since = p[2:-1, 0] - p[1, 0]
        assert _on_grid(since, 8.0, 0) or _on_grid(since, 16.5, 2)
        assert np.all(np.any(np.diff(p[1:-1, 1:], axis=0) != 0, axis=1))  # reports only where the pixel changed
    assert len({len(p) for p in out}) > 1  # the clock is drawn per movement


def _on_grid(t: np.ndarray, period: float, tol: float) -> bool:
    return bool(np.all(np.abs(t - period * np.round(t / period)) <= tol))


def test_render_draws_the_waits_of_training_movements(clock):
    smooth = np.column_stack([np.linspace(0, 700, 50), np.linspace(0, 301.3, 50), np.linspace(0, -40.6, 50)])
    smooth[1:, 0] += 100.4  # the decoder's own reaction time, replaced by a training movement's
    for p in clock.render([smooth] * 10, max_len=100, rng=np.random.default_rng(1)):
        assert np.array_equal(p[1], [150, 0, 0]) and p[2, 0] in (158, 166, 167)  # still report, then the motion
        assert p[-1, 0] - p[-2, 0] == 60 and np.array_equal(p[-1, 1:], p[-2, 1:])  # the dwell before the press
        assert p[-2, 0] - p[2, 0] >= 700 - 14.3 - 17  # the motion keeps its generated duration (to a frame)


def test_the_press_is_reported_where_the_cursor_rests(bare):
    clock = bare
    t = np.array([0.0, 90.0, 200.0, 300.0, 420.0])
    p = np.column_stack([t, [0.0, 0.0, 80.0, 150.0, 160.6], [0.0, 0.0, 10.0, 20.0, 22.4]])  # still moving at the end
    out = clock.render([p], max_len=100, rng=np.random.default_rng(4))[0]
    assert np.array_equal(out[-1, 1:], [161, 22]) and np.array_equal(out[-2, 1:], out[-1, 1:])
    assert 300 <= out[-2, 0] < 300 + 18 and out[-1, 0] == out[-2, 0] + 120  # last frame, then the generated dwell


def test_render_drops_reports_where_the_cursor_rests(bare):
    clock = bare
    t = np.linspace(0, 1000, 100)
    x = np.where(t < 500, t * 0.5, 250.0)  # moves for 500 ms, then rests for 500 ms
    p = np.column_stack([t, x, np.zeros_like(t)])
    out = clock.render([p], max_len=200, rng=np.random.default_rng(2))[0]
    assert out[-2, 0] <= 520 and out[-1, 0] == 1000  # no reports while still; the press comes when it came


def test_render_is_seeded_and_respects_max_len(bare):
    clock = bare
    p = np.column_stack([np.linspace(0, 3000, 400), np.linspace(0, 2000, 400), np.zeros(400)])
    a = clock.render([p], 30, np.random.default_rng(5))[0]
    b = clock.render([p], 30, np.random.default_rng(5))[0]
    assert np.array_equal(a, b) and len(a) == 30
    assert np.array_equal(a[0], [0, 0, 0]) and np.array_equal(a[-1, 1:], np.round(p[-1, 1:]))


def test_fit_needs_movements():
    with pytest.raises(ValueError, match="at least 4 points"):
        EventClock.fit([np.zeros((2, 3))])


# --------------------------------------------------------------------------- the sampler renders


@pytest.fixture(scope="module")
def latent_ckpt(model_data_dir, tmp_path_factory):
    from trajsynth.data.train_data import load_train_data
    from trajsynth.models.registry import run_config
    from trajsynth.training.loop import Trainer

    data = load_train_data(model_data_dir)
    cfg = run_config("latent_wgan", "tiny", max_seq_len=data.train.max_len, stage1_threshold=0.0)
    run = tmp_path_factory.mktemp("latent_render")
    return Trainer(cfg, data, run, tensorboard=False, progress=False, log_lines=False).train()


def test_a_continuous_family_comes_out_rendered(latent_ckpt):
    import trajsynth
    from trajsynth.data.features import paths_to_features

    s = trajsynth.load(latent_ckpt)
    assert s.renders and s.clock is not None
    g = s.generate(40, seed=3)
    assert all(np.array_equal(p, np.round(p)) for p in g.paths)
    X, _, L = paths_to_features(g.paths, g.X.shape[1], s.params)
    assert np.array_equal(L, g.L) and np.allclose(X, g.X)  # X and the paths describe the same movements
    h = s.generate(40, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(g.paths, h.paths, strict=True))  # seeded, clock included
    plain = trajsynth.load(latent_ckpt, render=False)
    assert not plain.renders
    assert not all(np.array_equal(p, np.round(p)) for p in plain.generate(40, seed=3).paths)
    p = s.path((10, 20), (300, -50), seed=1)
    assert np.array_equal(p[:, 1:], np.round(p[:, 1:])) and np.array_equal(p[-1, 1:], [300, -50])


def test_a_checkpoint_without_a_clock_is_not_rendered(latent_ckpt, tmp_path):
    import torch

    import trajsynth
    from trajsynth.models.checkpoint import load_checkpoint

    ckpt = load_checkpoint(latent_ckpt)
    del ckpt["data"]["event_clock"]  # as written before the clock was recorded
    torch.save(ckpt, tmp_path / "old.pt")
    s = trajsynth.load(tmp_path / "old.pt")
    assert s.clock is None and not s.renders
    assert len(s.generate(5, seed=0)) == 5


def test_paths_from_increments_end_where_the_positions_end(latent_ckpt, tmp_path):
    import torch

    import trajsynth
    from trajsynth.models.checkpoint import load_checkpoint

    ckpt = load_checkpoint(latent_ckpt)
    ckpt["arch"]["path_from"] = "increments"  # a decoding choice: the same weights load
    torch.save(ckpt, tmp_path / "increments.pt")
    by_steps, by_pos = trajsynth.load(tmp_path / "increments.pt"), trajsynth.load(latent_ckpt)
    assert by_steps.model.path_from == "increments" and by_pos.model.path_from == "positions"
    a, b = by_steps.generate(30, seed=4), by_pos.generate(30, seed=4)
    assert all(np.array_equal(p[-1, 1:], q[-1, 1:]) for p, q in zip(a.paths, b.paths, strict=True))
    assert not all(np.array_equal(p, q) for p, q in zip(a.paths, b.paths, strict=True))


@pytest.mark.parametrize("broken", [
    {"group_ms": [16.0]},  # tables missing
    {"group_ms": [16.0], "group_p": [1.0, 0.0], "tick_p": [[0.5, 0.5]], "still_p": 0.0},  # shapes disagree
    {"group_ms": [16.0], "group_p": [-1.0], "tick_p": [[0.5, 0.5]], "still_p": 0.0},  # not a probability
    {"group_ms": [16.0], "group_p": [1.0], "tick_p": [[0.5, 0.5]], "still_p": 0.0, "lead_ms": [[1, 2]]},
    "not a dict",
])
def test_a_malformed_clock_in_a_checkpoint_is_a_checkpoint_error(latent_ckpt, tmp_path, broken):
    import torch

    import trajsynth
    from trajsynth.models.checkpoint import CheckpointError, load_checkpoint

    ckpt = load_checkpoint(latent_ckpt)
    ckpt["data"]["event_clock"] = broken
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="bad.pt: its recorded event clock is malformed"):
        trajsynth.load(tmp_path / "bad.pt")
