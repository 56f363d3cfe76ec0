"""The ar_mdn family: interval classes, the mixture likelihood, generation, training and resume, on the tiny preset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic_data_dir

import trajsynth
from trajsynth.cli.main import main
from trajsynth.config import ConfigError
from trajsynth.data.features import condition_to_distance, features_to_paths
from trajsynth.data.train_data import load_train_data
from trajsynth.models.ar_mdn import ARMDNConfig
from trajsynth.models.ar_mdn.model import (
    ARRIVE,
    MOVE,
    PRESS,
    ARMDNModel,
    dt_edges,
    from_frame,
    marginal_nll,
    mixture_nll,
    rotate_components,
)
from trajsynth.models.ar_mdn.training import events, plan_shape
from trajsynth.models.registry import run_config
from trajsynth.training.loop import Trainer
from trajsynth.utils import threads

MAX_LEN = 40


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return synthetic_data_dir(tmp_path_factory.mktemp("ar_mdn") / "data", 300, 2, MAX_LEN)


@pytest.fixture(scope="module")
def data(data_dir):
    return load_train_data(data_dir)


def tiny(**kw):
    return run_config("ar_mdn", "tiny", max_seq_len=MAX_LEN, **kw)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> tuple[Trainer, Path]:
    run_dir = tmp_path_factory.mktemp("ar_mdn_run")
    tr = Trainer(tiny(ar_iterations=60), data, run_dir, tensorboard=False, progress=False)
    return tr, tr.train()


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_config_is_checked():
    with pytest.raises(ConfigError, match="step_scale"):
        ARMDNConfig(step_scale="log")
    with pytest.raises(ConfigError, match="dt_max_ms"):
        ARMDNConfig(dt_exact_ms=64, dt_log_buckets=16, dt_max_ms=70)
    with pytest.raises(ConfigError, match="temperature"):
        ARMDNConfig(temperature=0.0)
    with pytest.raises(ConfigError, match="ar_iterations"):
        run_config("ar_mdn", ar_iterations=0)


def test_interval_classes_cover_every_millisecond_once():
    cfg = ARMDNConfig(dt_exact_ms=20, dt_log_buckets=6, dt_max_ms=300)
    edges = dt_edges(cfg)
    assert edges[0] == 0 and edges[-1] == 300 and (torch.diff(edges) >= 1).all()
    assert torch.equal(edges[:21], torch.arange(21))  # one class per ms below dt_exact_ms
    model = ARMDNModel(cfg)
    ms = torch.arange(0, 400)
    cls = model.dt_class(ms)
    inside = ms.clamp_max(299)  # past dt_max_ms: the last bucket
    assert ((edges[cls] <= inside) & (inside < edges[cls + 1])).all()
    assert int(cls.max()) == model.n_dt - 1


def test_mixture_nll_matches_a_bivariate_normal():
    mu, log_sigma, rho = torch.tensor([[[1.0, -2.0]]]), torch.tensor([[[0.3, -0.5]]]), torch.tensor([[0.6]])
    y = torch.tensor([[0.2, -1.5]])
    s = log_sigma.exp()[0, 0]
    cov = torch.tensor([[s[0] ** 2, rho[0, 0] * s[0] * s[1]], [rho[0, 0] * s[0] * s[1], s[1] ** 2]])
    ref = -torch.distributions.MultivariateNormal(mu[0, 0], cov).log_prob(y[0])
    got = mixture_nll((torch.zeros(1, 1), mu, log_sigma, rho), y)
    assert torch.allclose(got[0], ref, atol=1e-5)
    # two equal components weigh like one
    two = mixture_nll((torch.zeros(1, 2), mu.repeat(1, 2, 1), log_sigma.repeat(1, 2, 1), rho.repeat(1, 2)), y)
    assert torch.allclose(two, got, atol=1e-5)


def test_generated_movements_are_integer_and_end_on_target(trained, data):
    tr, _ = trained
    params = tr.model.params
    n = 200
    C = data.train.C[:n]  # (n, 1)
    X, L = tr.model.generate(n, C, rng=torch.Generator().manual_seed(3))
    assert X.shape == (n, MAX_LEN, 8) and X.dtype == torch.float32 and L.dtype == torch.int64
    assert int(L.min()) >= 2 and int(L.max()) <= MAX_LEN
    assert torch.all(X[torch.arange(MAX_LEN)[None, :] >= L[:, None]] == 0), "zero past each length"
    paths = features_to_paths(X.numpy(), C.numpy(), L.numpy(), params)
    D = condition_to_distance(C.numpy().reshape(-1), params)
    for p, d in zip(paths, D, strict=True):
        assert np.array_equal(p[0], [0, 0, 0])
        assert np.abs(p - np.round(p)).max() < 0.01, "integer ms and px (up to the float32 features)"
        assert np.all(np.diff(p[:, 0]) >= 0)
        assert abs(math.hypot(*p[-1, 1:]) - d) <= math.sqrt(0.5) + 1e-3, "ends on the target pixel"


def test_sampling_is_seeded(trained):
    model = trained[0].model
    C = torch.linspace(-0.8, 0.8, 50).reshape(-1, 1)
    a = model.generate(50, C, rng=torch.Generator().manual_seed(5))
    b = model.generate(50, C, rng=torch.Generator().manual_seed(5))
    c = model.generate(50, C, rng=torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_event_labels():
    # release, two moves, arrival on (5, 0), press there; then one whose press moves (no arrival)
    P = torch.tensor([[[0, 0, 0], [10, 2, 0], [20, 4, 0], [30, 5, 0], [90, 5, 0]],
                      [[0, 0, 0], [10, 2, 0], [20, 4, 0], [70, 5, 0], [70, 5, 0]]], dtype=torch.float64)
    L = torch.tensor([5, 4])
    k = torch.arange(4)[None, :].expand(2, 4)
    assert events(P, L, k).tolist() == [[MOVE, MOVE, ARRIVE, PRESS], [MOVE, MOVE, PRESS, MOVE]]


def test_snap_arrivals_and_still_moves(trained):
    model = trained[0].model
    n = 300
    P, L, info = model.sample_paths(n, torch.zeros(n, 1), rng=torch.Generator().manual_seed(1))
    rows = np.arange(n)
    before = P[rows, L - 2, 1:]  # the point before the press, whose distance to the target is the snap
    target = P[rows, L - 1, 1:]
    assert np.allclose(np.hypot(*(target - before).T), info["snap_px"])
    arrived = info["arrive_px"] > 0
    assert np.all(info["snap_px"][arrived] == 0), "after an arrival the press does not move"
    assert info["forced"].dtype == bool and not info["forced"][L < MAX_LEN].any()
    # a logger reports no motion event without motion: moves after the first one change the pixel
    still = [np.all(P[i, 2 : L[i] - 1, 1:] == P[i, 1 : L[i] - 2, 1:], axis=-1) for i in rows if L[i] > 3]
    assert np.concatenate(still).mean() < 0.01


def test_nll_decreases_with_training(data, tmp_path):
    tr = Trainer(tiny(ar_iterations=60, lr=3e-3), data, tmp_path, tensorboard=False, progress=False)
    before = tr.training.validation_nll()["val_nll"]
    tr.train()
    after = tr.training.validation_nll()["val_nll"]
    assert after < before - 0.5, (before, after)


def test_resume_matches_uninterrupted_run(data, tmp_path):
    cfg = tiny(ar_iterations=30, save_interval=10, lr_schedule="cosine")
    full = Trainer(cfg, data, tmp_path / "full", tensorboard=False, progress=False)
    full.train()
    resumed = Trainer.from_checkpoint(tmp_path / "full" / "fit_iter10.pt", data, tmp_path / "resumed",
                                      tensorboard=False, progress=False)
    resumed.train()
    a, b = weights(full.model), weights(resumed.model)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run must end with identical weights"


@pytest.mark.parametrize("n", [1, 2])
def test_resumed_run_keeps_its_thread_count(data, tmp_path, monkeypatch, n):
    # A different count changes the weights' last bits, so the policy (free cores now) must not decide.
    monkeypatch.delenv("TRAJSYNTH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    n = min(n, threads.cores())
    before = torch.get_num_threads()
    try:
        first = Trainer(tiny(ar_iterations=2, save_interval=1), data, tmp_path / "a", tensorboard=False,
                        progress=True, threads=n)
        first.train()
        torch.set_num_threads(3 - n)
        resumed = Trainer.from_checkpoint(tmp_path / "a" / "fit_iter1.pt", data, tmp_path / "b",
                                          tensorboard=False, progress=False)
        assert torch.get_num_threads() == n
        assert first.progress is True and resumed.progress is False  # the progress-bar choice is the caller's
        monkeypatch.setenv("TRAJSYNTH_THREADS", "1")  # an explicit count still wins
        torch.set_num_threads(2)
        Trainer.from_checkpoint(tmp_path / "a" / "fit_iter1.pt", data, tmp_path / "c", tensorboard=False,
                                progress=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_loads_through_trajsynth_load(trained):
    _, final = trained
    s = trajsynth.load(final)
    assert s.family == "ar_mdn"
    p = s.path((100, 200), (400, 600), seed=1)
    assert np.allclose(p[0, 1:], (100, 200)) and np.array_equal(p[-1, 1:], (400, 600))
    a, b = s.sample(4, distance_px=150, seed=2), s.sample(4, distance_px=150, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(abs(math.hypot(*x[-1, 1:]) - 150) <= math.sqrt(0.5) + 1e-3 for x in a)


def test_plan_table_holds_training_plans_of_each_distance_bin(trained):
    tr, _ = trained
    model, train = tr.model, tr.training.train_set
    log_d = train.ends().norm(dim=-1).log()
    edges, records = model.plan_edges, model.plan_records  # (B+1,), (B, R, plan_dim)
    assert torch.all(torch.diff(edges) >= 0) and torch.isfinite(records).all()
    for b in range(len(records)):
        inside = (log_d >= edges[b]) & (log_d <= edges[b + 1])
        candidates = train.plan[inside, : model.plan_dim]  # (m, plan_dim)
        hit = (records[b][:, None, :] == candidates[None]).all(-1).any(-1)
        assert hit.all(), f"bin {b}: every recorded plan is one of the bin's training movements"
    assert float(model.step_cap_px) == pytest.approx(train.longest_step())


def test_generated_steps_are_capped(trained):
    model = trained[0].model
    P, L, _ = model.sample_paths(200, torch.linspace(-1, 1, 200).reshape(-1, 1), rng=torch.Generator().manual_seed(4))
    steps = np.hypot(*np.diff(P[..., 1:], axis=1).transpose(2, 0, 1))  # (n, T-1)
    moves = np.arange(P.shape[1] - 1)[None, :] < (L - 3)[:, None]  # drawn moves, before the arrival and the press
    assert steps[moves].max() <= float(model.step_cap_px) + 1.0


def _larger_speeds(model, P, L) -> np.ndarray:
    """Speeds px/ms of the drawn moves (before the arrival and the press) outside the small-step grid."""
    P, L = np.asarray(P), np.asarray(L)
    d = np.diff(P, axis=1)  # (n, T-1, 3)
    length = np.hypot(d[..., 1], d[..., 2])
    moves = np.arange(P.shape[1] - 1)[None, :] < (L - 3)[:, None]
    larger = moves & (np.abs(d[..., 1:]).max(-1) > model.cfg.grid_radius)
    return (length / np.maximum(d[..., 0], 1.0))[larger]


def test_steps_faster_than_max_step_speed_are_drawn_again(trained):
    model = trained[0].model
    C = torch.linspace(-1, 1, 400).reshape(-1, 1)
    speeds = _larger_speeds(model, *model.sample_paths(400, C, rng=torch.Generator().manual_seed(4))[:2])
    cap = float(np.quantile(speeds, 0.5))  # px/ms: half of the larger steps are faster
    model.cfg.max_step_speed = cap
    try:
        capped = _larger_speeds(model, *model.sample_paths(400, C, rng=torch.Generator().manual_seed(4))[:2])
    finally:
        model.cfg.max_step_speed = 0.0
    # not all: a larger step (over grid_radius px) in a 1 ms interval is too fast at every try, and the last is kept
    assert (capped > cap).mean() < 0.85 * (speeds > cap).mean(), ((capped > cap).mean(), (speeds > cap).mean())
    with pytest.raises(ConfigError, match="max_step_speed"):
        ARMDNConfig(max_step_speed=-1.0)


def test_rotated_components_have_the_rotated_density():
    torch.manual_seed(0)
    mu, log_sigma, rho = torch.randn(5, 3, 2), torch.randn(5, 3, 2) * 0.5, torch.tanh(torch.randn(5, 3))
    angle = torch.rand(5) * 2 * math.pi
    cos, sin = angle.cos(), angle.sin()
    y_frame = torch.randn(5, 2)
    y_screen = from_frame(y_frame, cos, sin)
    logit = torch.randn(5, 3)
    m, ls, r = rotate_components(mu, log_sigma, rho, cos, sin)
    # a rotation has Jacobian 1: the density of the rotated point under the rotated mixture is the same
    assert torch.allclose(mixture_nll((logit, m, ls, r), y_screen), mixture_nll((logit, mu, log_sigma, rho), y_frame),
                          atol=1e-4)


def test_small_steps_are_classes_and_larger_ones_are_not():
    model = ARMDNModel(ARMDNConfig(grid_radius=2))
    steps = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-2.0, 2.0], [0.0, -1.0], [3.0, 0.0], [-5.0, 7.0]])
    cls = model.grid_class(steps)
    assert model.n_grid == 25 and int(cls[0]) == model.n_grid // 2, "(0, 0) is the middle class"
    small = cls < model.n_grid
    assert small.tolist() == [True, True, True, True, False, False]
    assert torch.equal(model.grid[cls[small]], steps[small].double())


def test_dropout_acts_in_training_only(data, tmp_path):
    with pytest.raises(ConfigError, match="dropout"):
        ARMDNConfig(dropout=1.0)
    tr = Trainer(tiny(ar_iterations=2, dropout=0.5), data, tmp_path, tensorboard=False, progress=False)
    model = tr.model
    b = tr.training.train_set.batch(model, torch.arange(8), None)
    model.train()
    torch.manual_seed(0)
    a = float(model.losses(b)["total"].detach())
    torch.manual_seed(1)
    assert float(model.losses(b)["total"].detach()) != a, "training: a fresh dropout mask per call"
    model.eval()
    again = [float(model.losses(b)["total"].detach()) for _ in range(2)]
    assert again[0] == again[1], "evaluation: no dropout"


def test_loss_ignores_the_steps_past_each_movements_end(data, tmp_path):
    """Past a movement's end the step heads see inputs they were never trained on and can overflow (σ = inf,
    late in a long run); those steps are not scored, so nothing there may reach the loss: an inf there once
    made it NaN through inf · 0. Here the step targets past the end are made absurd (1e30)."""
    tr = Trainer(tiny(ar_iterations=2), data, tmp_path, tensorboard=False, progress=False)
    model = tr.model.eval()
    b = tr.training.train_set.batch(model, torch.arange(16), None)
    past = ~b["valid"]
    assert past.any(), "the batch must have steps past some movement's end"
    clean = {k: float(v) for k, v in model.losses(b).items()}
    spoiled = {**b, "y": torch.where(past[..., None], torch.full_like(b["y"], 1e30), b["y"])}
    out = model.losses(spoiled)
    out["total"].backward()
    assert {k: float(v) for k, v in out.items()} == pytest.approx(clean, rel=1e-6)
    assert all(torch.isfinite(q.grad).all() for q in model.parameters() if q.grad is not None)


def test_axis_classes_split_the_larger_steps():
    with pytest.raises(ConfigError, match="axis_classes needs grid_radius"):
        ARMDNConfig(axis_classes=True, grid_radius=0)
    model = ARMDNModel(ARMDNConfig(grid_radius=2, axis_classes=True))
    steps = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, -9.0], [-5.0, 7.0], [0.0, 2.0]])
    free, on_x, on_y = model.n_grid, model.n_grid + 1, model.n_grid + 2
    assert model.grid_class(steps).tolist()[1:4] == [on_x, on_y, free]
    assert int(model.grid_class(steps)[0]) < free and int(model.grid_class(steps)[4]) < free, "small: grid classes"
    assert model.grid_out.out_features == model.n_grid + 3


def test_marginal_nll_is_the_mixtures_marginal_density():
    torch.manual_seed(1)
    logit, mu, log_sigma, rho = torch.randn(4, 3), torch.randn(4, 3, 2), torch.randn(4, 3, 2) * 0.3, torch.randn(4, 3)
    y = torch.randn(4)
    for axis in (0, 1):
        comp = torch.distributions.Normal(mu[..., axis], log_sigma[..., axis].exp())
        want = -torch.logsumexp(torch.log_softmax(logit, -1) + comp.log_prob(y[:, None]), -1)
        assert torch.allclose(marginal_nll((logit, mu, log_sigma, torch.tanh(rho)), y, axis), want, atol=1e-5)


def test_axis_class_draws_stay_in_their_class(data, tmp_path):
    tr = Trainer(tiny(ar_iterations=20, axis_classes=True), data, tmp_path, tensorboard=False, progress=False)
    model = tr.model.eval()
    n = 300
    s = {"scale": torch.full((n,), 40.0, dtype=torch.float64), "prev_screen": torch.zeros(n, 2, dtype=torch.float64),
         "dir_cos": torch.ones(n, dtype=torch.float64), "dir_sin": torch.zeros(n, dtype=torch.float64)}
    x = torch.randn(n, model.cfg.head_dim)
    lock = torch.arange(n) % 3  # free, on the x axis, on the y axis
    step = model._drawn_larger(x, torch.full((n,), 16.0), s, torch.arange(n),
                               lambda st, r: model._off_class(st, lock[r]), torch.Generator().manual_seed(0), lock)
    R = model.cfg.grid_radius
    assert (step[lock == 1, 1] == 0).all() and (step[lock == 1, 0].abs() > R).float().mean() > 0.9
    assert (step[lock == 2, 0] == 0).all() and (step[lock == 2, 1].abs() > R).float().mean() > 0.9
    assert (step[lock == 0] != 0).all(-1).float().mean() > 0.9, "free steps are drawn again when they land on an axis"


def test_path_is_drawn_for_its_direction_on_integer_pixels(trained):
    s = trajsynth.load(trained[1])
    assert s.directed
    for end in [(400, 200), (100, -250), (-300, 0), (0, 90)]:
        p = s.path((10, 20), (10 + end[0], 20 + end[1]), seed=3)
        steps = np.diff(p[:, 1:], axis=0)
        assert np.array_equal(steps, np.round(steps)), "steps stay whole pixels (no rotation, no scaling)"
        assert np.array_equal(p[-1, 1:], (10 + end[0], 20 + end[1]))
    # directed generation in batch: each movement ends on its own target
    t = np.array([[120.0, -40.0], [-75.0, 210.0], [0.0, -300.0]])
    paths = s.generate(3, seed=4, targets=t).paths
    assert np.array_equal(np.stack([q[-1, 1:] for q in paths]), t)
    with pytest.raises(ValueError, match=r"targets must have shape \(n, 2\)"):
        s.generate(2, targets=t)


def test_distance_only_models_reject_targets(tmp_path, data):
    tr = Trainer(run_config("procedural", "tiny", max_seq_len=MAX_LEN), data, tmp_path, tensorboard=False,
                 progress=False)
    s = trajsynth.load(tr.train())
    assert not s.directed
    with pytest.raises(ValueError, match="conditions on the distance only"):
        s.generate(1, targets=[[100.0, 0.0]])
    p = s.path((0, 0), (0, 300), seed=0)
    assert np.allclose(p[-1, 1:], (0, 300))
    g = s.generate(20, seed=1)  # the rounding in the sampler only removes float32's last bits
    raw = features_to_paths(g.X, g.C, g.L, s.params)
    assert max(float(np.abs(q - np.round(q)).max()) for q in raw) < 1e-3


def test_sampler_paths_are_the_drawn_paths_and_X_describes_them(trained):
    s = trajsynth.load(trained[1])
    g = s.generate(200, seed=3)
    assert all(p.dtype == np.float64 and np.array_equal(p, np.round(p)) for p in g.paths)
    assert [len(p) for p in g.paths] == g.L.tolist()
    back = features_to_paths(g.X, g.C, g.L, s.params)  # the features, inverted, give the same movements
    assert sum(np.allclose(b, p, atol=0.02) for b, p in zip(back, g.paths, strict=True)) >= 198


def test_plan_shape_measures_the_lateral_excursion_and_the_time_to_90_percent():
    # two movements to (100, 0): one bulges 30 px to the left (+y) and reaches 90 px at 300 of 400 ms; the other,
    # rotated to end at (0, 100), bulges to the right of its line and covers 90 % of it at its end
    a = torch.tensor([[0, 0, 0], [100, 30, 30], [300, 95, 10], [400, 100, 0]], dtype=torch.float64)
    b = torch.tensor([[0, 0, 0], [50, 20, 50], [200, 0, 100], [200, 0, 100]], dtype=torch.float64)
    P = torch.stack([a, b])
    end = P[:, -1]
    shape = plan_shape(P, end, end[:, 1:].norm(dim=-1))
    assert shape[0].tolist() == pytest.approx([0.30, 300 / 400])
    assert shape[1].tolist() == pytest.approx([-0.20, 1.0])


def test_plan_shape_is_given_to_every_step_and_drawn_with_the_plan(data, tmp_path):
    tr = Trainer(tiny(ar_iterations=4, plan_shape=True), data, tmp_path, tensorboard=False, progress=False)
    tr.train()
    model = tr.model
    assert model.plan_records.shape[-1] == 4
    plain = Trainer(tiny(ar_iterations=1), data, tmp_path / "plain", tensorboard=False, progress=False).model
    assert model.inp[0].in_features == plain.inp[0].in_features + 2
    train = tr.training.train_set
    recorded = model.plan_records.reshape(-1, 4)
    assert (recorded[:, None, :] == train.plan[None]).all(-1).any(-1).all(), "whole plans of training movements"
    P, L, _ = model.sample_paths(20, torch.zeros(20, 1), rng=torch.Generator().manual_seed(0))
    assert np.isfinite(P).all() and (L >= 2).all()


@pytest.fixture(scope="module")
def with_critic(data, tmp_path_factory) -> tuple[Trainer, Path]:
    run_dir = tmp_path_factory.mktemp("ar_mdn_critic")
    tr = Trainer(tiny(ar_iterations=20, critic=True, candidates=3, critic_iterations=12, save_interval=4), data,
                 run_dir, tensorboard=False, progress=False)
    return tr, tr.train()


def test_critic_phase_trains_only_the_critic_after_the_fit(with_critic, tmp_path):
    tr, final = with_critic
    assert [p.name for p in tr.phases] == ["fit", "critic"] and bool(tr.model.critic_trained)
    fit, crit = (torch.load(final.parent / f"{name}_final.pt", weights_only=True)["model_state"]
                 for name in ("fit", "critic"))
    assert all(torch.equal(fit[k], crit[k]) for k in fit if not k.startswith("critic")), "the step model is frozen"
    assert not all(torch.equal(fit[k], crit[k]) for k in fit if k.startswith("critic.")), "the critic has trained"
    evals = [json.loads(line) for line in (final.parent / "metrics.jsonl").read_text().splitlines()]
    last = [e for e in evals if e.get("phase") == "critic" and "val_critic_accuracy" in e][-1]
    assert 0 <= last["val_critic_accuracy"] <= 1 and math.isfinite(last["val_critic_loss"])
    plain = Trainer(tiny(ar_iterations=1), tr.data, tmp_path, tensorboard=False, progress=False)
    assert [p.name for p in plain.phases] == ["fit"] and not hasattr(plain.model, "critic")


def assert_resume_matches(full: Trainer, checkpoint: Path, data, out: Path) -> None:
    resumed = Trainer.from_checkpoint(checkpoint, data, out, tensorboard=False, progress=False)
    resumed.train()
    a, b = weights(full.model), weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a), f"resumed from {checkpoint.name}: weights must be identical"


def test_resume_in_the_critic_phase_matches_uninterrupted_run(with_critic, data, tmp_path):
    full, final = with_critic
    assert_resume_matches(full, final.parent / "critic_iter4.pt", data, tmp_path)


def test_generation_keeps_the_candidate_the_critic_favours(with_critic):
    model = with_critic[0].model.eval()
    assert model.chooses
    n, k = 6, model.cfg.candidates
    favoured = torch.arange(n) % k  # which candidate of each movement the stand-in critic rates far higher
    model.critic_logits = lambda X, L: torch.where(torch.arange(len(L)) % k == favoured.repeat_interleave(k),
                                                   50.0, -50.0)
    try:
        targets = torch.tensor([[120.0, 40.0]] * n)
        P, L, info = model.sample_paths(n, torch.zeros(n, 1), rng=torch.Generator().manual_seed(2), targets=targets)
        kept = model._choose(torch.as_tensor(P).repeat_interleave(k, 0), torch.as_tensor(L).repeat_interleave(k, 0),
                             np.repeat(info["distance"], k), k, torch.Generator().manual_seed(0))
    finally:
        del model.critic_logits
    assert torch.equal(kept, torch.arange(n) * k + favoured)
    assert np.array_equal(P[np.arange(n), L - 1, 1:], targets.numpy()) and len(info["distance"]) == n


def test_candidates_need_a_critic_and_are_not_batched_continuously(with_critic):
    with pytest.raises(ConfigError, match="needs critic=true"):
        ARMDNConfig(candidates=2)
    s = trajsynth.load(with_critic[1])
    assert s.steps_live and not s.continuous
    p = s.path((10, 20), (130, 60), seed=3)
    assert np.array_equal(p[-1, 1:], (130, 60)) and np.array_equal(p, s.path((10, 20), (130, 60), seed=3))


def test_candidates_can_be_chosen_when_loading_a_model_with_a_critic(with_critic, trained, tmp_path, capsys):
    final = with_critic[1]
    assert trajsynth.load(final).model.cfg.candidates == 3
    one = trajsynth.load(final, candidates=1)
    assert not one.model.chooses and one.continuous, "one candidate: the critic is not used"
    assert trajsynth.load(final, candidates=5).model.cfg.candidates == 5
    with pytest.raises(ValueError, match="has no trained critic"):
        trajsynth.load(trained[1], candidates=2)
    with pytest.raises(ValueError, match="whole number >= 1"):
        trajsynth.load(final, candidates=0)
    assert trajsynth.load(trained[1], candidates=1).model.cfg.candidates == 1
    assert main(["generate", str(final), "--n", "4", "--candidates", "2", "--out", str(tmp_path / "g.npz")]) == 0
    assert np.load(tmp_path / "g.npz")["L"].shape == (4,)
    assert main(["generate", str(trained[1]), "--n", "4", "--candidates", "2"]) == 2
    assert "has no trained critic" in capsys.readouterr().err


def test_step_nlls_are_the_losses_per_step(trained):
    tr, _ = trained
    ts, model = tr.training.train_set, tr.model.eval()
    idx = torch.arange(12)
    batch = ts.batch(model, idx, None)
    with torch.no_grad():
        per_step, total = model.step_nlls(batch), model.losses(batch)["total"]
    assert per_step.shape == batch["valid"].shape and (per_step[~batch["valid"]] == 0).all()
    assert float(per_step.sum() / batch["valid"].sum()) == pytest.approx(float(total), rel=1e-5)


@pytest.fixture(scope="module")
def with_adversarial(data, tmp_path_factory) -> tuple[Trainer, Path]:
    run_dir = tmp_path_factory.mktemp("ar_mdn_adversarial")
    cfg = tiny(ar_iterations=12, critic=True, critic_iterations=6, adv_iterations=6, adv_groups=3, adv_candidates=2,
               save_interval=3)
    tr = Trainer(cfg, data, run_dir, tensorboard=False, progress=False)
    return tr, tr.train()


def test_adversarial_phase_tunes_the_step_model_against_the_frozen_critic(with_adversarial):
    tr, final = with_adversarial
    assert [p.name for p in tr.phases] == ["fit", "critic", "adversarial"]
    critic, tuned = (torch.load(final.parent / f"{name}_final.pt", weights_only=True)["model_state"]
                     for name in ("critic", "adversarial"))
    assert not all(torch.equal(critic[k], tuned[k]) for k in critic if not k.startswith("critic")), "it trains"
    assert all(torch.equal(critic[k], tuned[k]) for k in critic if k.startswith("critic")), "adv_critic_lr 0: frozen"
    reference = tr.training.adversarial.reference.state_dict()
    assert all(torch.equal(critic[k], reference[k]) for k in critic), "the KL reference is the fitted model"
    P, L, _ = tr.model.sample_paths(8, torch.zeros(8, 1), rng=torch.Generator().manual_seed(1))
    assert np.isfinite(P).all() and (L >= 2).all()


def test_resume_in_the_adversarial_phase_matches_uninterrupted_run(with_adversarial, data, tmp_path):
    full, final = with_adversarial
    assert_resume_matches(full, final.parent / "adversarial_iter3.pt", data, tmp_path)


def test_adversarial_phase_needs_a_critic_and_may_train_it(data, tmp_path):
    with pytest.raises(ConfigError, match="needs critic=true"):
        Trainer(tiny(adv_iterations=2), data, tmp_path / "a", tensorboard=False, progress=False)
    with pytest.raises(ConfigError, match="adv_candidates"):
        tiny(critic=True, adv_iterations=2, adv_candidates=1)
    tr = Trainer(tiny(ar_iterations=4, critic=True, critic_iterations=2, adv_iterations=2, adv_groups=2,
                      adv_candidates=2, adv_critic_lr=1e-3), data, tmp_path / "b", tensorboard=False, progress=False)
    final = tr.train()
    critic, tuned = (torch.load(final.parent / f"{name}_final.pt", weights_only=True)["model_state"]
                     for name in ("critic", "adversarial"))
    assert not all(torch.equal(critic[k], tuned[k]) for k in critic if k.startswith("critic.")), "the critic learns"


@pytest.mark.parametrize("key, value, says", [("adv_lr", 0.0, "adv_lr must be > 0, got 0.0"),
                                               ("critic_lr", -1.0, "critic_lr must be > 0, got -1.0"),
                                               ("adv_kl", -0.1, "adv_kl must be >= 0, got -0.1"),
                                               ("adv_critic_lr", -1e-3, "adv_critic_lr must be >= 0, got -0.001"),
                                               ("max_press_jump_px", -1.0, "max_press_jump_px must be >= 0")])
def test_critic_and_adversarial_settings_are_checked(key, value, says):
    with pytest.raises(ConfigError, match=says):
        tiny(**{key: value})


def test_movements_that_do_not_arrive_by_themselves_are_drawn_again(trained):
    model = trained[0].model.eval()
    n, targets = 300, torch.tensor([[150.0, -60.0]] * 300)

    def draw(redraws: int):
        model.cfg.redraws = redraws
        try:
            return model.sample_paths(n, torch.zeros(n, 1), rng=torch.Generator().manual_seed(4), targets=targets)
        finally:
            model.cfg.redraws = ARMDNConfig.redraws

    P0, L0, info0 = draw(0)
    failed0 = model.failed({k: torch.as_tensor(info0[k]) for k in ("forced", "snap_px")})
    P3, L3, info3 = draw(3)
    failed3 = model.failed({k: torch.as_tensor(info3[k]) for k in ("forced", "snap_px")})
    assert failed0.float().mean() > 0.05, "the barely trained model fails often: something to redraw"
    assert failed3.float().mean() < failed0.float().mean() / 2
    assert np.array_equal(P3[np.arange(n), L3 - 1, 1:], targets.numpy()), "every movement still ends on its target"
    assert (P3[:, 0] == 0).all(), "a restarted movement starts again at the origin at 0 ms"
    again = draw(3)
    assert np.array_equal(again[0], P3) and np.array_equal(again[1], L3), "reproducible from the seed"
    with pytest.raises(ConfigError, match="redraws"):
        ARMDNConfig(redraws=-1)
