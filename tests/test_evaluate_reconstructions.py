"""evaluate --reconstructions end to end: a tiny autoencoder's copies of real movements, scored like generations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from trajsynth.cli.main import main
from trajsynth.evaluation.sources import real_set, reconstruction_inputs

QUICK = ["--n", "40", "--repeats", "1", "--quick", "--workers", "1"]


def _train(data: Path, out: Path, *args: str, family: str = "latent_wgan") -> Path:
    assert main(["train", str(data), "--family", family, "--preset", "tiny", "--no-tensorboard", "--quiet",
                 "--out", str(out), *args]) == 0
    return next(out.glob("run_*/final.pt"))


@pytest.fixture(scope="module")
def latent_final(model_data_dir, tmp_path_factory) -> Path:
    """A tiny latent_wgan whose stage 1 ran long enough for its two paths to differ."""
    torch.set_num_threads(1)
    return _train(model_data_dir, tmp_path_factory.mktemp("latent"), "--set", "stage1_threshold=0",
                  "--set", "stage1_iterations=400", "--set", "lr_autoencoder=0.003")


def _report(path: Path) -> dict[str, float]:
    rep = json.loads(path.read_text())
    assert all(isinstance(v, float) and np.isfinite(v) for v in rep.values()), rep
    return rep


def test_reconstructions_score_both_paths(model_data_dir, latent_final, tmp_path, capsys):
    out = tmp_path / "ceiling"
    assert main(["evaluate", "--reconstructions", str(latent_final), str(model_data_dir), *QUICK,
                 "--out", str(out)]) == 0
    reps = {p: _report(out / p / "report.json") for p in ("bottleneck", "direct")}
    for rep in reps.values():
        assert 0 <= rep["disc_timegan"] <= 0.5 and 0 <= rep["disc_strong"] <= 0.5  # |accuracy − 0.5|
        assert 0 <= rep["kinematic_detector_acc"] <= 1 and rep["recon_px_median"] >= 0
        assert {"mmd", "coverage", "ref_disc_strong", "cond_rel_err_median"} <= set(rep)
    real = real_set(model_data_dir, "test", 40, 0)
    zero_copy = float(np.mean(real.X[np.arange(real.X.shape[1]) < real.L[:, None]] ** 2))  # copying nothing
    # the direct path skips the summary, so its copies are closer, and both beat a copy of zeros
    assert reps["direct"]["recon_mse"] < reps["bottleneck"]["recon_mse"] < zero_copy
    md = (out / "direct" / "report.md").read_text()
    assert "reconstructions of the real movements through the direct path" in md and "| `recon_mse` |" in md
    summary = (out / "summary.md").read_text()
    assert "| metric | bottleneck | direct | real vs real | better |" in summary
    assert "| `kinematic_detector_acc` |" in summary and "ceiling" in summary.lower()


def test_reconstructions_keep_real_lengths_and_conditions(model_data_dir, latent_final):
    per_path = reconstruction_inputs(model_data_dir, latent_final, "test", 30, seed=2)
    assert list(per_path) == ["bottleneck", "direct"]
    for e in per_path.values():
        # as decoded, the copies pair with the real movements: same lengths, same conditions
        assert np.array_equal(e.copies.L, e.real.L) and np.array_equal(e.copies.C, e.real.C)
        assert [len(p) for p in e.copies.paths] == list(e.real.L)
        # as scored, they are rendered like generations: whole px and ms, lengths set by the clock
        assert np.array_equal(e.fake.C, e.real.C) and all(np.array_equal(p, np.round(p)) for p in e.fake.paths)
        assert [len(p) for p in e.fake.paths] == list(e.fake.L) and not np.array_equal(e.fake.L, e.real.L)
        assert e.embed is not None  # latent metrics in the model's own space
    plain = reconstruction_inputs(model_data_dir, latent_final, "test", 30, seed=2, render=False)
    assert all(np.array_equal(e.fake.L, e.real.L) for e in plain.values())


def test_reconstructions_need_an_autoencoder(model_data_dir, tmp_path, capsys):
    final = _train(model_data_dir, tmp_path / "proc", family="procedural")
    out = tmp_path / "never"
    assert main(["evaluate", "--reconstructions", str(final), str(model_data_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "'procedural' has no autoencoder" in err
    assert not out.exists()


def test_reconstructions_refuse_samples(model_data_dir, latent_final, tmp_path, capsys):
    args = ["evaluate", "--reconstructions", "--samples", str(tmp_path / "s.npz"), str(model_data_dir)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --reconstructions") and "--samples" in err and err.count("\n") == 1
    assert main(["evaluate", "--reconstructions", str(latent_final)]) == 2  # DATA_DIR missing
    assert "expected CKPT DATA_DIR" in capsys.readouterr().err


def test_help_describes_reconstructions(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--reconstructions" in text and "reconstructions of the real movements" in text
