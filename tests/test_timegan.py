"""The timegan family: config checks, the three phases, the discriminator's threshold, lengths per condition,
generation, exact resume mid-phase, every CLI mode, and the benchmark's --save-samples files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import trajsynth
from trajsynth.blocks.length_table import LengthTable
from trajsynth.blocks.masks import length_mask
from trajsynth.blocks.scaling import MinMaxScaler
from trajsynth.cli.main import main
from trajsynth.config import ConfigError
from trajsynth.data.loading import TrajectoryDataset
from trajsynth.data.train_data import TrainData, load_train_data
from trajsynth.losses.reconstruction import masked_moment_gap
from trajsynth.models.registry import run_config
from trajsynth.models.timegan import TimeGANArch
from trajsynth.training.loop import Trainer

MAX_LEN = 40  # of conftest's model_data_dir
PHASES = ["embedding", "supervised", "joint"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(model_data_dir) -> TrainData:
    return load_train_data(model_data_dir)


def tiny(**kw):
    return run_config("timegan", "tiny", max_seq_len=MAX_LEN, **kw)


def trainer(data, run_dir, **kw) -> Trainer:
    return Trainer(tiny(**kw), data, run_dir, tensorboard=False, progress=False, log_lines=False)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> tuple[Trainer, Path]:
    tr = trainer(data, tmp_path_factory.mktemp("timegan_run"))
    return tr, tr.train()


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_config_is_checked():
    for bad, key in [(dict(module="rnn"), "module"), (dict(output="relu"), "output"),
                     (dict(num_layers=0), "num_layers"), (dict(hidden_dim=-1), "hidden_dim"),
                     (dict(length_bins=0), "length_bins")]:
        with pytest.raises(ConfigError, match=key):
            TimeGANArch(**bad)
    for key in ("joint_iterations", "k_generator", "d_threshold", "lr", "eta", "diff_moment_weight"):
        with pytest.raises(ConfigError, match=key):
            run_config("timegan", **{key: -1})
    assert TimeGANArch(feature_dim=6).width == 24 and TimeGANArch(feature_dim=6).z_dim == 6  # the paper's rule


def test_three_phases_run_with_finite_losses(trained):
    tr, final = trained
    assert [p.name for p in tr.phases] == PHASES and tr.state["done"] == PHASES
    names = {p.name for p in final.parent.iterdir()}
    assert {f"{p}_final.pt" for p in PHASES} <= names and "final.pt" in names
    records = [json.loads(line) for line in (final.parent / "metrics.jsonl").read_text().splitlines()]
    by_phase = {p: [r for r in records if r.get("phase") == p and "it_s" in r] for p in PHASES}
    assert all(by_phase.values()), "each phase logs its losses"
    losses = [v for rs in by_phase.values() for r in rs for k, v in r.items() if k not in ("phase", "iteration")]
    assert np.isfinite(losses).all()
    assert {"D", "G_U", "G_U_e", "S_rmse", "V", "E_rmse", "D_updated"} <= set(by_phase["joint"][0])
    evals = [r for r in records if r.get("phase") == "joint" and "val_moments" in r]
    assert evals and np.isfinite(evals[-1]["val_moments"])


def test_output_range_follows_the_data(trained, data, tmp_path):
    assert trained[0].model.cfg.output == "tanh", "mouse features: tanh"
    assert "output: tanh" in (trained[1].parent / "config.yaml").read_text()
    windows = TrainData(TrajectoryDataset(data.train.X[:64, :24, :3], np.zeros(64), np.full(64, 24)), None, {}, "-")
    run = run_config("timegan", "tiny", feature_dim=3, max_seq_len=24)
    tr = Trainer(run, windows, tmp_path, tensorboard=False, progress=False, log_lines=False)
    assert tr.model.cfg.output == "sigmoid", "benchmark windows (no feature scaling): the original's sigmoid"
    x = torch.rand(2, 5, 3) * 2 - 1
    assert torch.allclose(tr.model.to_features(tr.model.to_model(x)), x)


def _discriminator_weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.discriminator.parameters()]


def test_discriminator_is_updated_only_while_its_loss_exceeds_the_threshold(data, tmp_path):
    tr = trainer(data, tmp_path)
    tr.train(until="supervised")
    training, rng = tr.training, tr.training.rng.get_state()
    d_state = {k: v.clone() for k, v in tr.model.discriminator.state_dict().items()}

    def step(threshold: float) -> tuple[dict, bool]:
        training.rng.set_state(rng)  # the same batch and noise, and the same discriminator, every time
        tr.model.discriminator.load_state_dict(d_state)
        training.cfg.d_threshold = threshold
        out = training.discriminator_step()
        moved = any(not torch.equal(v, d_state[k]) for k, v in tr.model.discriminator.state_dict().items())
        return out, moved

    loss = step(1e9)[0]["D"]
    for threshold, expected in [(loss + 1e-4, False), (loss - 1e-4, True), (1e9, False), (0.0, True)]:
        out, moved = step(threshold)
        assert out["D"] == loss
        assert moved is expected and out["D_updated"] == float(expected), threshold


def test_a_joint_phase_with_a_high_threshold_never_touches_the_discriminator(data, tmp_path):
    tr = trainer(data, tmp_path, d_threshold=1e6)
    tr.train(until="supervised")
    before = _discriminator_weights(tr.model)
    tr.train()
    assert all(torch.equal(a, b) for a, b in zip(before, _discriminator_weights(tr.model), strict=True))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["D_updated"] for r in records if "D_updated" in r] == [0.0, 0.0]


def test_batches_hold_similar_lengths(data, tmp_path):
    def spread(pool: int) -> float:
        tr = trainer(data, tmp_path / str(pool), length_pool=pool)
        batches = [tr.training._batch()[2] for _ in range(20)]  # masks (B, T')
        return float(np.mean([(m.sum(1).max() - m.sum(1).min()).item() for m in batches]))

    assert spread(8) < 0.5 * spread(1)


def test_length_table_draws_each_conditions_own_lengths():
    c = torch.cat([torch.full((50,), -0.5), torch.full((50,), 0.5)])
    L = torch.cat([torch.randint(3, 6, (50,)), torch.randint(20, 31, (50,))])
    table = LengthTable(bins=2, quantiles=16, max_len=40)
    table.fit(c, L)
    gen = torch.Generator().manual_seed(0)
    short, long = table.sample(torch.full((200,), -0.6), gen), table.sample(torch.full((200,), 0.7), gen)
    assert set(short.tolist()) <= set(range(3, 6)) and set(long.tolist()) <= set(range(20, 31))
    assert len(set(long.tolist())) > 3, "a spread of lengths, not one"
    tied = LengthTable(bins=4, quantiles=8, max_len=24)
    tied.fit(torch.zeros(30), torch.full((30,), 24))  # one constant condition: bins left empty take all lengths
    assert (tied.table == 24).all()


def test_generation_shapes_lengths_and_masking(trained, data):
    model = trained[0].model
    n = 120
    C = data.train.C[:n]
    X, L = model.generate(n, C, rng=torch.Generator().manual_seed(3))
    assert X.shape == (n, MAX_LEN, 8) and X.dtype == torch.float32 and L.dtype == torch.int64
    assert int(L.min()) >= 1 and int(L.max()) <= MAX_LEN
    past = torch.arange(MAX_LEN)[None, :] >= L[:, None]
    assert torch.all(X[past] == 0) and X.abs().max() <= 1
    assert set(L.tolist()) <= set(data.train.L.tolist()), "lengths are training lengths"
    again = model.generate(n, C, rng=torch.Generator().manual_seed(3))
    assert torch.equal(X, again[0]) and torch.equal(L, again[1])
    X24, L24 = model.generate(5, C[:5], rng=torch.Generator().manual_seed(1), seq_len=24)
    assert (L24 == 24).all() and torch.all(X24[:, 24:] == 0)


def test_min_max_scaler_uses_valid_steps_and_inverts():
    x = torch.rand(4, 6, 2) * 0.5 + 0.5  # the Sines' range [0.5, 1]
    x[0, 4:] = 0.0  # padding
    scaler = MinMaxScaler(2)
    scaler.fit(x, torch.tensor([4, 6, 6, 6]))
    valid = torch.cat([x[0, :4], x[1:].reshape(-1, 2)])
    assert torch.equal(scaler.lo, valid.amin(0)) and torch.equal(scaler.hi, valid.amax(0))
    u = scaler.to_unit(valid)
    assert u.min() == 0 and u.max() > 0.9999 and torch.allclose(scaler.from_unit(u), valid)
    assert torch.allclose(scaler.from_unit(scaler.to_unit(valid, True), True), valid)


def test_moment_gap_ignores_padding():
    real, fake = torch.rand(6, 7, 3), torch.rand(6, 7, 3)
    full = torch.ones(6, 7, dtype=torch.bool)
    mask = full.clone()
    mask[3:, 4:] = False
    a = masked_moment_gap(fake, real, mask)
    fake2 = fake.clone()
    fake2[~mask] = 100.0
    assert all(torch.allclose(x, y) for x, y in zip(a, masked_moment_gap(fake2, real, mask), strict=True))
    std_gap, mean_gap = masked_moment_gap(fake, real, full)
    ref_mean = (fake.mean(0) - real.mean(0)).abs().mean()
    ref_std = ((fake.var(0, correction=0) + 1e-6).sqrt() - (real.var(0, correction=0) + 1e-6).sqrt()).abs().mean()
    assert torch.allclose(mean_gap, ref_mean) and torch.allclose(std_gap, ref_std)


def test_diff_moment_gap_enters_the_generator_loss_only_when_weighted(trained, data):
    model = trained[0].model
    x, c, L = data.train.batch(torch.arange(16), trim=False)  # (16, T, F)
    u, mask = model.to_model(x), length_mask(L, x.shape[1])
    z = torch.rand(16, x.shape[1], model.cfg.z_dim, generator=torch.Generator().manual_seed(0))
    off = model.generator_losses(u, c, z, mask, run_config("timegan", "tiny").train)
    assert "diff_moments" not in off  # the original's loss by default
    w = run_config("timegan", "tiny", diff_moment_weight=10.0).train
    on = model.generator_losses(u, c, z, mask, w)
    assert on["diff_moments"] > 0
    assert torch.allclose(on["total"], off["total"] + 10.0 * on["diff_moments"])


@pytest.mark.parametrize("phase", PHASES)
def test_resume_mid_phase_matches_an_uninterrupted_run(trained, data, tmp_path, phase):
    full, final = trained
    resumed = Trainer.from_checkpoint(final.parent / f"{phase}_iter3.pt", data, tmp_path, tensorboard=False,
                                      progress=False, log_lines=False)
    assert resumed.phases[resumed.state["phase"]].name == phase and resumed.state["iteration"] == 3
    resumed.train()
    a, b = weights(full.model), weights(resumed.model)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run must end with identical weights"


def test_sampler_and_reconstruction(trained, data):
    s = trajsynth.load(trained[1])
    assert s.family == "timegan" and not s.directed
    p = s.path((10, 20), (210, -80), seed=4)
    assert np.allclose(p[0, 1:], (10, 20)) and np.array_equal(p[-1, 1:], (210, -80))
    a, b = s.sample(4, distance_px=120, seed=9), s.sample(4, distance_px=120, seed=9)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    x_hat, L = trained[0].model.reconstruct(data.train.X[:8], data.train.L[:8])
    assert x_hat.shape == (8, MAX_LEN, 8) and torch.equal(L, data.train.L[:8])


def test_every_cli_mode(model_data_dir, tmp_path, capsys):
    """train (--until, --init), resume, generate, export-samples, inspect-*, and the sets evaluate scores."""
    from trajsynth.evaluation.sources import evaluation_inputs, reconstruction_inputs

    base, d = tmp_path / "runs", str(model_data_dir)
    quiet = ["--no-tensorboard", "--quiet"]
    assert main(["train", d, "--family", "timegan", "--preset", "tiny", "--until", "supervised", *quiet,
                 "--out", str(base)]) == 0
    (run,) = base.iterdir()
    assert main(["train", d, "--family", "timegan", "--preset", "tiny", "--init", str(run / "supervised_final.pt"),
                 *quiet, "--out", str(base)]) == 0
    assert main(["resume", str(run / "embedding_iter3.pt"), *quiet, "--out", str(base)]) == 0
    final = next(p / "final.pt" for p in base.iterdir() if (p / "final.pt").exists())
    assert main(["generate", str(final), "--n", "5", "--distance", "150"]) == 0
    assert main(["export-samples", str(final), "--n", "20", "--out", str(tmp_path / "s.npz"),
                 "--conditions-from", d]) == 0
    assert np.load(tmp_path / "s.npz")["X"].shape == (20, MAX_LEN, 8)
    assert main(["inspect-model", "--family", "timegan", "--preset", "paper"]) == 0
    assert main(["inspect-checkpoint", str(run / "supervised_iter3.pt")]) == 0
    out = capsys.readouterr().out
    assert "family timegan" in out and "Parameters (timegan, preset paper)" in out
    e = evaluation_inputs(d, "test", 30, 0, checkpoint=final)  # what `evaluate CKPT DATA` scores
    assert len(e.fake) == len(e.real) and e.fake.paths is not None
    (copies,) = reconstruction_inputs(d, final, "test", 30, 0).values()  # `evaluate --reconstructions`
    assert np.array_equal(copies.copies.L, copies.real.L), "one copy of each real movement, as long"


@pytest.mark.slow
def test_evaluate_and_quick_test_cli(trained, model_data_dir, tmp_path, capsys):
    final, d, quick = str(trained[1]), str(model_data_dir), ["--n", "30", "--repeats", "1", "--quick"]
    assert main(["evaluate", final, d, *quick, "--out", str(tmp_path / "eval")]) == 0
    assert main(["evaluate", "--reconstructions", final, d, *quick, "--out", str(tmp_path / "ceiling")]) == 0
    assert (tmp_path / "eval" / "report.json").exists() and (tmp_path / "ceiling" / "autoencoder").is_dir()
    assert main(["quick-test", "--family", "timegan", "--iterations", "2", "--out", str(tmp_path / "q")]) == 0
    assert "quick test passed" in capsys.readouterr().out


def _check_saved(out: Path, runs: int, n: int) -> None:
    real = np.load(out / "sines_real.npz")
    assert list(real) == ["X"] and real["X"].shape == (n, 24, 5)
    for k in range(1, runs + 1):
        fake = np.load(out / f"sines_timegan_run{k}.npz")
        assert list(fake) == ["X"] and fake["X"].shape == real["X"].shape
        assert 0 <= fake["X"].min() and fake["X"].max() <= 1, "the real windows' scaling"


def test_benchmark_saves_the_scored_windows(tmp_path, capsys):
    from trajsynth.evaluation.literature import run_benchmark
    from trajsynth.evaluation.suite import Budget

    out = tmp_path / "samples"
    res = run_benchmark("sines", "timegan", runs=2, preset="tiny", budget=Budget(disc=10, pred=10, encoder=5),
                        max_windows=100, log=lambda s: None, save_samples=out)
    _check_saved(out, 2, 100)
    assert [p.name for p in res.samples] == ["sines_real.npz", "sines_timegan_run1.npz", "sines_timegan_run2.npz"]
    printed = capsys.readouterr().out
    assert "[seed 0] [embedding]" in printed and "[seed 1] [joint]" in printed, "each run's lines say which run"
    argv = ["benchmark", "--dataset", "sines", "--family", "timegan", "--runs", "2", "--save-samples", str(out)]
    assert main(argv) == 2, "existing files are never overwritten (checked before any training)"
    assert "sines_real.npz already exists" in capsys.readouterr().err


@pytest.mark.slow
def test_benchmark_cli_saves_the_scored_windows(tmp_path, capsys):
    out = tmp_path / "samples"
    assert main(["benchmark", "--dataset", "sines", "--family", "timegan", "--preset", "tiny", "--runs", "2",
                 "--quick", "--save-samples", str(out)]) == 0
    _check_saved(out, 2, 500)
    assert "sines_timegan_run2.npz" in capsys.readouterr().out


def test_benchmark_ceiling_scores_and_saves_the_autoencoder_copies(tmp_path, capsys):
    """--ceiling: the autoencoder's copy of every real window, scored by the same classifiers and saved."""
    from trajsynth.evaluation.literature import CEILING, results_json, results_table, run_benchmark
    from trajsynth.evaluation.suite import Budget

    out = tmp_path / "samples"
    res = run_benchmark("sines", "timegan", runs=1, preset="tiny", budget=Budget(disc=10, pred=10, encoder=5),
                        max_windows=100, log=lambda s: None, save_samples=out, ceiling=True)
    _check_saved(out, 1, 100)
    assert [p.name for p in res.reconstructions] == ["sines_timegan_run1_reconstructed.npz"]
    real, copies = np.load(out / "sines_real.npz")["X"], np.load(res.reconstructions[0])["X"]
    generated = np.load(out / "sines_timegan_run1.npz")["X"]
    assert copies.shape == real.shape and 0 <= copies.min() and copies.max() <= 1
    assert not np.allclose(copies, generated), "copies of the real windows, not generations"
    assert 0 <= res.runs[CEILING].mean <= 0.5
    assert "ceiling" in results_table(res).splitlines()[0]
    assert CEILING in results_json(res) and len(results_json(res)["seconds_runs"]) == 1
    with pytest.raises(ValueError, match="no autoencoder"):
        run_benchmark("sines", "procedural", runs=1, ceiling=True)
    assert main(["benchmark", "--dataset", "sines", "--family", "ar_mdn", "--ceiling"]) == 2
    assert "no autoencoder" in capsys.readouterr().err
