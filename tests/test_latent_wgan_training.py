"""Training, checkpoints, resume, divergence handling and the model CLI, on tiny presets."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import trajsynth
from trajsynth.cli.main import main
from trajsynth.data.loading import TrajectoryDataset
from trajsynth.data.train_data import TrainData, load_train_data
from trajsynth.models.checkpoint import CheckpointError, load_checkpoint, newest_checkpoint
from trajsynth.models.registry import run_config
from trajsynth.training.loop import Trainer, TrainingDiverged

MAX_LEN = 40


@pytest.fixture(scope="module")
def data_dir(model_data_dir) -> Path:
    return model_data_dir


def tiny_cfg(**kw):
    return run_config("latent_wgan", "tiny", max_seq_len=MAX_LEN, stage1_threshold=0.0, **kw)


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_full_run_writes_every_artifact(data_dir, tmp_path):
    tr = Trainer(tiny_cfg(), load_train_data(data_dir), tmp_path / "run", tensorboard=False, progress=False)
    final = tr.train()
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.yaml", "metrics.jsonl", "stage1_final.pt", "stage2_iter10.pt", "stage2_final.pt",
            "final.pt"} <= names
    ckpt = load_checkpoint(final)
    assert ckpt["family"] == "latent_wgan" and ckpt["arch"]["arch_version"] == 6 and ckpt["family_version"] == 6
    assert ckpt["trainer_state"]["done"] == ["stage1", "stage2"] and ckpt["trainer_state"]["complete"]
    assert "n_critic" in ckpt["train"] and "n_critic" not in ckpt["arch"]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert any('"phase": "stage2"' in line for line in lines)


def test_autoencoder_frozen_in_stage2(data_dir, tmp_path):
    tr = Trainer(tiny_cfg(), load_train_data(data_dir), tmp_path, tensorboard=False, progress=False)
    tr.train(until="stage1")
    before = {k: v.clone() for k, v in tr.model.encoder.state_dict().items()}
    gen_before = weights(tr.model.generator)
    tr.train()
    assert all(torch.equal(before[k], v) for k, v in tr.model.encoder.state_dict().items())
    assert any(not torch.equal(gen_before[k], v) for k, v in tr.model.generator.state_dict().items())


@pytest.mark.parametrize("decoder", [{}, {"decoder_noise_dim": 4}, {"decoder_type": "mixture"}],
                         ids=["deterministic", "stochastic_decoder", "mixture_decoder"])
@pytest.mark.parametrize("ckpt_name", ["stage1_iter10.pt", "stage2_iter10.pt"])
def test_resume_matches_uninterrupted_run(data_dir, tmp_path, ckpt_name, decoder):
    data = load_train_data(data_dir)
    full = Trainer(tiny_cfg(**decoder), data, tmp_path / "full", tensorboard=False, progress=False)
    full.train()
    resumed = Trainer.from_checkpoint(tmp_path / "full" / ckpt_name, data, tmp_path / "resumed",
                                              tensorboard=False, progress=False)
    resumed.train()
    a, b = weights(full.model), weights(resumed.model)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run must end with identical weights"


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(data_dir, tmp_path):
    data = load_train_data(data_dir)
    X = data.train.X.clone()
    X[5:, 1, 0] = float("nan")  # poison most sequences
    bad = TrainData(TrajectoryDataset(X, data.train.C, data.train.L), data.val, data.normalization, "x")
    tr = Trainer(tiny_cfg(save_interval=1000), bad, tmp_path, tensorboard=False, progress=False)
    with pytest.raises(TrainingDiverged, match=r"\[Stage 1\] non-finite loss at iteration \d+"):
        tr.train()
    assert not (tmp_path / "stage1_final.pt").exists()


def test_checkpoint_loading_is_safe_and_explains(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"is not a trajsynth checkpoint \(not a PyTorch file\)"):
        load_checkpoint(tmp_path / "junk.pt")

    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"format": "trajsynth-checkpoint", "x": Evil()}))
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists(), "loading must never run pickled code"


def test_sampler_pixel_paths(data_dir, tmp_path):
    Trainer(tiny_cfg(), load_train_data(data_dir), tmp_path, tensorboard=False, progress=False).train()
    s = trajsynth.load(tmp_path / "final.pt")
    a, b = s.sample(3, distance_px=150, seed=7), s.sample(3, distance_px=150, seed=7)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert all(np.array_equal(p[0], [0, 0, 0]) and np.all(np.diff(p[:, 0]) >= 0) for p in a)
    path = s.path((100, 200), (400, 600), seed=1)
    assert np.allclose(path[0, 1:], (100, 200)) and np.array_equal(path[-1, 1:], (400, 600))
    with pytest.raises(ValueError, match="trained range"):
        s.sample(1, distance_px=1e6)
    with pytest.raises(CheckpointError, match="not a finished model"):
        trajsynth.load(tmp_path / "stage1_final.pt")


def test_cli_modes(data_dir, tmp_path, capsys):
    out = tmp_path / "runs"
    run_args = ["--no-tensorboard", "--quiet", "--out", str(out)]
    tiny = ["--preset", "tiny", "--set", "stage1_threshold=0", *run_args]  # train-stage1 / 2: latent_wgan only
    assert main(["train", str(data_dir), "--family", "latent_wgan", *tiny]) == 0
    run = next(out.iterdir())
    final = run / "final.pt"
    assert main(["generate", str(final), "--n", "5", "--distance", "200"]) == 0
    assert "5 trajectories" in capsys.readouterr().out
    npz = tmp_path / "samples.npz"
    assert main(["export-samples", str(final), "--n", "20", "--out", str(npz), "--conditions-from",
                 str(data_dir), "--split", "test"]) == 0
    z = np.load(npz, allow_pickle=False)
    assert z["X"].shape == (20, MAX_LEN, 8) and z["paths_offsets"][-1] == len(z["paths_points"])
    assert np.allclose(z["C"], np.load(data_dir / "C_test.npy")[:20])
    assert main(["export-samples", str(final), "--n", "5", "--out", str(npz)]) == 2  # never overwrite
    assert main(["inspect-checkpoint", str(final)]) == 0
    assert "phases done: stage1, stage2; complete True" in capsys.readouterr().out
    assert main(["inspect-checkpoint", str(run)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["inspect-model", "--family", "latent_wgan", "--preset", "tiny"]) == 0
    assert main(["resume", str(run / "stage2_iter10.pt"), *run_args]) == 0
    assert main(["train-stage1", str(data_dir), *tiny]) == 0
    s1 = sorted(out.glob("*/stage1_final.pt"))[-1]
    assert main(["train-stage2", str(data_dir), "--stage1-checkpoint", str(s1), *tiny]) == 0
    assert main(["train-stage2", str(data_dir), "--stage1-checkpoint", str(s1), *tiny,
                 "--set", "latent_dim=9"]) == 2
    assert "mismatch" in capsys.readouterr().err


def test_newest_checkpoint_goes_by_progress_not_names_or_times(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(tiny_cfg(), load_train_data(data_dir), run, tensorboard=False, progress=False).train()
    (run / "zz_broken.pt").write_bytes(b"cut short")  # unreadable: passed over
    shutil.copy(run / "stage1_iter10.pt", run / "zz_copy.pt")  # last by name, early by progress
    os.utime(run / "stage1_iter10.pt", (4e9, 4e9))  # newest by time
    assert newest_checkpoint(run).name == "final.pt"
    (run / "final.pt").unlink()
    assert newest_checkpoint(run).name == "stage2_final.pt"
    (run / "stage2_final.pt").unlink()
    assert newest_checkpoint(run).name == "stage2_iter10.pt"
    out = tmp_path / "resumed"
    assert main(["resume", str(run), "--out", str(out), "--no-tensorboard", "--quiet"]) == 0
    assert f"(resuming {run / 'stage2_iter10.pt'})" in capsys.readouterr().out
    assert load_checkpoint(next(out.glob("run_*")) / "final.pt")["trainer_state"]["complete"]
    for p in run.glob("*.pt"):
        if p.name != "zz_broken.pt":
            p.unlink()
    assert main(["resume", str(run)]) == 2
    assert capsys.readouterr().err == f"error: {run} holds no readable checkpoint (*.pt)\n"


def test_stage1_stops_at_convergence_only_after_min_iterations(data_dir, tmp_path):
    data = load_train_data(data_dir)
    cfg = run_config("latent_wgan", "tiny", max_seq_len=MAX_LEN, stage1_iterations=40, stage1_threshold=10.0,
                     stage1_min_iterations=15, log_interval=5)
    tr = Trainer(cfg, data, tmp_path / "a", tensorboard=False, progress=False)
    tr.train(until="stage1")
    assert tr.state["converged_at"]["stage1"] == 15  # first logging step at or past the floor
    cfg = run_config("latent_wgan", "tiny", max_seq_len=MAX_LEN, stage1_iterations=40, stage1_threshold=0.0,
                     log_interval=5)
    tr = Trainer(cfg, data, tmp_path / "b", tensorboard=False, progress=False)
    tr.train(until="stage1")
    assert "stage1" not in tr.state["converged_at"]
    assert run_config("latent_wgan").train.stage1_min_iterations == 6000


def test_directed_model_trains_and_goes_where_asked(data_dir, tmp_path):
    data = load_train_data(data_dir)
    final = Trainer(tiny_cfg(directed=True), data, tmp_path, tensorboard=False, progress=False).train()
    s = trajsynth.load(final)
    assert s.directed and s.model.angle_hist.sum() == len(data.train)
    ends = np.array([[200.0, 0.0], [0.0, 150.0], [-120.0, -90.0]])
    g = s.generate(3, seed=0, targets=ends)
    assert np.allclose(g.distance_px, np.hypot(ends[:, 0], ends[:, 1]))
    assert len(s.generate(4, distance_px=300, seed=1)) == 4  # no end point: a direction drawn like the data's
    for start, end in (((0, 0), (400, 0)), ((500, 500), (100, 200))):
        p = s.path(start, end, seed=1)
        assert np.allclose(p[0, 1:], start) and np.array_equal(p[-1, 1:], end)
    plain = trajsynth.load(Trainer(tiny_cfg(), data, tmp_path / "plain", tensorboard=False, progress=False).train())
    assert not plain.directed  # distance-only models are unchanged
    with pytest.raises(ValueError, match="targets need a model that generates for a direction"):
        plain.generate(3, targets=ends)


def test_mixture_decoder_model_draws_paths_that_end_where_asked(data_dir, tmp_path):
    data = load_train_data(data_dir)
    cfg = tiny_cfg(decoder_type="mixture", directed=True, path_from="increments")
    s = trajsynth.load(Trainer(cfg, data, tmp_path, tensorboard=False, progress=False).train())
    assert s.model.mixture and s.model.path_from == "increments"
    a, b, other = (s.generate(8, distance_px=300, seed=k) for k in (0, 0, 1))
    assert all(np.array_equal(p, q) for p, q in zip(a.paths, b.paths, strict=True))  # seeded draws
    assert not all(np.array_equal(p, q) for p, q in zip(a.paths, other.paths, strict=True))
    for start, end in (((0, 0), (400, 0)), ((500, 500), (100, 200))):
        p = s.path(start, end, seed=1)  # whole pixels from the start to the end asked for
        assert np.allclose(p[0, 1:], start) and np.array_equal(p[-1, 1:], end)
        assert np.array_equal(p, np.round(p)) and np.all(np.diff(p[:, 0]) >= 0)
