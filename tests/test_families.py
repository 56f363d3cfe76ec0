"""The model-family seam: registry, run configs, checkpoints, and every family through the same paths."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import trajsynth
from trajsynth.cli.main import main
from trajsynth.config import ConfigError
from trajsynth.data.train_data import load_train_data
from trajsynth.models.base import TrajectoryModel
from trajsynth.models.checkpoint import (
    CheckpointError,
    build_model,
    is_complete,
    load_checkpoint,
    phases_done,
    save_checkpoint,
)
from trajsynth.models.registry import family_names, get_family, run_config
from trajsynth.training.loop import Trainer
from trajsynth.training.setup import load_continuable

FIXTURES = Path(__file__).parent / "data"
MAX_LEN = 40


@pytest.fixture(scope="module")
def data_dir(model_data_dir) -> Path:
    return model_data_dir


@pytest.fixture(scope="module")
def finals(data_dir, tmp_path_factory) -> dict[str, Path]:
    """final.pt of every family, trained through the CLI with its tiny preset."""
    out, paths = tmp_path_factory.mktemp("runs"), {}
    for fam in family_names():
        base = out / fam
        assert main(["train", str(data_dir), "--family", fam, "--preset", "tiny", "--no-tensorboard", "--quiet",
                     "--out", str(base)]) == 0
        paths[fam] = next(base.glob("run_*/final.pt"))
    return paths


def test_registry_and_configs():
    assert family_names()[0] == "latent_wgan" and "procedural" in family_names()
    for name in family_names():
        fam = get_family(name)
        arch, train = ({f.name for f in dataclasses.fields(c)} for c in (fam.arch_cls, fam.train_cls))
        assert not arch & train and {"seed", "batch_size", "eval_interval"} <= train
        assert fam.phase_names and set(fam.search_space) <= set(fam.phase_names)
        assert set(fam.optional_phases) < set(fam.phase_names)
        for preset in fam.presets:
            run = run_config(name, preset)
            assert run.to_dict()["family"] == name
    with pytest.raises(ConfigError, match="unknown model family 'gan'; choose from latent_wgan, procedural, "
                                          "ar_mdn, timegan, tcn_vae"):
        get_family("gan")
    with pytest.raises(ConfigError, match=r"'calibration_movement' \(did you mean 'calibration_movements'"):
        run_config("procedural", calibration_movement=5)


@pytest.mark.parametrize("family", family_names())
def test_every_family_trains_loads_and_generates(finals, family, capsys):
    final = finals[family]
    ckpt = load_checkpoint(final)
    assert ckpt["family"] == family and ckpt["trainer_state"]["complete"]
    fam = get_family(family)  # the tiny presets run every phase but the optional ones
    assert ckpt["trainer_state"]["done"] == [p for p in fam.phase_names if p not in fam.optional_phases]
    model = build_model(ckpt, final)
    assert isinstance(model, TrajectoryModel)
    X, L = model.generate(5, torch.zeros(5, 1), rng=torch.Generator().manual_seed(0))
    assert X.shape == (5, MAX_LEN, 8) and L.dtype == torch.int64 and int(L.min()) >= 1
    s = trajsynth.load(final)
    p = s.path((10, 20), (210, -80), seed=4)
    assert np.allclose(p[0, 1:], (10, 20)) and np.array_equal(p[-1, 1:], (210, -80))
    assert np.all(np.diff(p[:, 0]) >= 0)
    a, b = s.sample(4, distance_px=120, seed=9), s.sample(4, distance_px=120, seed=9)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert main(["inspect-checkpoint", str(final)]) == 0
    assert f"family {family}" in capsys.readouterr().out


def test_procedural_is_evaluated_like_any_model(finals, data_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", str(finals["procedural"]), str(data_dir), "--n", "40", "--repeats", "1", "--quick",
                 "--out", str(out)]) == 0
    report = (out / "report.json").read_text()
    assert "kinematic_detector_acc" in report and "disc_strong" in report
    assert "the evaluator's own encoder" in (out / "report.md").read_text()  # no embed(): the suite's encoder


def test_inspect_model_of_each_family(capsys):
    for fam in family_names():
        assert main(["inspect-model", "--family", fam, "--preset", "tiny"]) == 0
        assert f"Parameters ({fam}, preset tiny)" in capsys.readouterr().out


def test_checkpoint_of_unknown_or_newer_family_is_refused(finals, tmp_path):
    ckpt = load_checkpoint(finals["procedural"])
    save_checkpoint(tmp_path / "other.pt", {**ckpt, "family": "diffusion"})
    with pytest.raises(ConfigError, match="unknown model family 'diffusion'"):
        build_model(load_checkpoint(tmp_path / "other.pt"))
    save_checkpoint(tmp_path / "newer.pt", {**ckpt, "family_version": 99})
    with pytest.raises(CheckpointError, match="version 99, newer than this build's 1"):
        trajsynth.load(tmp_path / "newer.pt")


def test_version_1_checkpoints_still_load_and_generate_the_same():
    """A finished model written before the family seam (one flat config) samples exactly as it did then."""
    s = trajsynth.load(FIXTURES / "latent_wgan_v1_tiny.pt")
    g = s.generate(8, distance_px=150, seed=3)
    ref = np.load(FIXTURES / "latent_wgan_v1_tiny_sample.npz")
    assert np.array_equal(g.L, ref["L"]) and np.array_equal(g.X, ref["X"])
    ckpt = load_checkpoint(FIXTURES / "latent_wgan_v1_tiny.pt")
    assert ckpt["version"] == 2 and ckpt["family"] == "latent_wgan" and ckpt["trainer_state"]["complete"]
    assert "n_critic" in ckpt["train"] and "latent_dim" in ckpt["arch"]


def test_version_1_checkpoint_resumes(data_dir, tmp_path):
    data = load_train_data(data_dir)
    tr = Trainer.from_checkpoint(FIXTURES / "latent_wgan_v1_tiny.pt", data, tmp_path, tensorboard=False,
                                 progress=False)
    assert tr.state["done"] == ["stage1", "stage2"]
    assert tr.train() == tmp_path / "final.pt"  # nothing left to train: the final model is written again


# --------------------------------------------------------------------------- damaged checkpoints
# Found by tests/test_fuzz_checkpoints.py: each raised TypeError, AttributeError, RuntimeError or KeyError from
# deep inside (or, for huge stored sizes, tried to allocate them), or gave a message over several lines.


def _damaged(finals, tmp_path, which: str, **changes) -> Path:
    ckpt = load_checkpoint(finals[which])
    path = tmp_path / f"{which}_damaged.pt"
    save_checkpoint(path, {**ckpt, **changes})
    return path


def test_damaged_checkpoints_are_checkpoint_errors(finals, tmp_path):
    ckpt = load_checkpoint(finals["latent_wgan"])
    state = dict(ckpt["model_state"])
    cases = [
        (dict(model_state=[1, 2]), "holds no model weights"),
        (dict(family_version="1"), "family_version '1' is not a version number"),
        (dict(arch={**ckpt["arch"], "critic_hidden_dims": [2**40]}), r"weight critic\..* is \(.*\) but the stored"),
        (dict(arch={**ckpt["arch"], "noise_dim": 2**70}), "stored architecture cannot be used"),
        (dict(model_state={**state, "critic.extra": torch.zeros(1)}), r"has unknown weights \['critic.extra'\]"),
        (dict(model_state={k: v for k, v in state.items() if k != "critic.out.bias"}), "lacks weights"),
        (dict(arch=[1, 2]), "expected a mapping of LatentWGANArch keys, got list"),
    ]
    for changes, words in cases:
        path = _damaged(finals, tmp_path, "latent_wgan", **changes)
        with pytest.raises(CheckpointError, match=words) as info:
            build_model(load_checkpoint(path), path)
        assert "\n" not in str(info.value)


def test_weight_mismatch_message_is_one_line(finals, tmp_path):
    state = dict(load_checkpoint(finals["latent_wgan"])["model_state"])
    state["critic.out.bias"] = torch.zeros(3, 3)
    path = _damaged(finals, tmp_path, "latent_wgan", model_state=state)
    with pytest.raises(CheckpointError, match=r"critic.out.bias is \(3, 3\) but the stored architecture needs"):
        build_model(load_checkpoint(path), path)


def test_family_of_another_type_is_a_config_error(finals, tmp_path):
    path = _damaged(finals, tmp_path, "procedural", family={"name": "procedural"})
    with pytest.raises(ConfigError, match="unknown model family"):
        build_model(load_checkpoint(path), path)


def test_damaged_progress_record_is_neither_complete_nor_continuable(finals, tmp_path):
    ckpt = load_checkpoint(finals["latent_wgan"])
    assert not is_complete({**ckpt, "trainer_state": [1]}) and phases_done({**ckpt, "trainer_state": 3}) == []
    path = _damaged(finals, tmp_path, "latent_wgan", trainer_state={**ckpt["trainer_state"], "done": "stage1"})
    with pytest.raises(CheckpointError, match="not a finished-phase checkpoint"):  # once: list("stage1") passed
        load_continuable(path)


@pytest.mark.parametrize("change, words", [
    (lambda c: {"trainer_state": {**c["trainer_state"], "phase": "1"}}, "progress record: phase '1'"),
    (lambda c: {"trainer_state": {**c["trainer_state"], "done": ["stage2"]}}, "phases done"),
    (lambda c: {"trainer_state": {**c["trainer_state"], "window": [{"a": "x"}]}}, "logging window"),
    (lambda c: {"training": {**c["training"], "optimizers": {}}}, r"training state cannot be restored \(KeyError"),
    (lambda c: {"rng": {"torch": torch.zeros(3)}}, r"training state cannot be restored \(TypeError: RNG state"),
    (lambda c: {"train": [1]}, "stored configuration cannot be used"),
], ids=["phase", "done", "window", "optimizers", "rng", "train"])
def test_a_damaged_resume_writes_nothing(finals, data_dir, tmp_path, change, words):
    ckpt = load_checkpoint(finals["latent_wgan"])
    path = _damaged(finals, tmp_path, "latent_wgan", **change(ckpt))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(CheckpointError, match=words) as info:
        Trainer.from_checkpoint(path, load_train_data(data_dir), run_dir, tensorboard=False, progress=False)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert list(run_dir.iterdir()) == []  # config.yaml was written before the state failed to load


def test_unknown_until_phase_fails_before_the_run_folder(data_dir, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", str(data_dir), "--family", "procedural", "--preset", "tiny", "--until", "stage1",
                 "--out", str(out), "--no-tensorboard", "--quiet"]) == 2
    assert "unknown phase 'stage1' for --until; procedural has fit" in capsys.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []
