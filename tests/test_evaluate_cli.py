"""evaluate / visualize / benchmark end to end on a tiny model: real files, real reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic_data_dir

from trajsynth.cli.main import main
from trajsynth.evaluation.literature import PUBLISHED, results_table, run_benchmark
from trajsynth.evaluation.suite import QUICK, Budget
from trajsynth.metrics.base import REGISTRY

MAX_LEN = 40


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(data dir, final.pt, exported samples) of a tiny model on synthetic movements."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("eval")
    data = synthetic_data_dir(base / "data", 300, 1, MAX_LEN)
    tiny = ["--family", "latent_wgan", "--preset", "tiny", "--set", "stage1_threshold=0", "--no-tensorboard",
            "--quiet", "--out", str(base)]
    assert main(["train", str(data), *tiny]) == 0
    final = next(base.glob("run_*/final.pt"))
    npz = base / "samples.npz"
    assert main(["export-samples", str(final), "--n", "40", "--out", str(npz), "--conditions-from", str(data),
                 "--split", "test"]) == 0
    return data, final, npz


def _report(out: Path) -> dict:
    rep = json.loads((out / "report.json").read_text())
    assert all(isinstance(v, float) and np.isfinite(v) for v in rep.values()), rep
    return rep


def test_evaluate_checkpoint_writes_every_metric(trained, tmp_path, capsys):
    data, final, _ = trained
    out = tmp_path / "report"
    args = ["evaluate", str(final), str(data), "--n", "40", "--repeats", "1", "--quick", "--out", str(out)]
    assert main(args) == 0
    rep = _report(out)
    expected = {"disc_timegan", "disc_strong", "pred_tstr", "pred_original", "mmd", "mmd_latent", "coverage",
                "density", "context_fid", "correlational", "length_w1", "cond_rel_err_median",
                "kinematic_detector_acc", "ref_mmd", "ref_disc_strong"}
    assert expected <= set(rep), expected - set(rep)
    assert 0 <= rep["disc_timegan"] <= 0.5 and 0 <= rep["coverage"] <= 1
    assert all(k in REGISTRY for k in ("disc_timegan", "mmd", "coverage", "context_fid"))
    md = (out / "report.md").read_text()
    assert "| `disc_strong` |" in md and any(b in md for b in ("Excellent", "Good", "Needs work", "Poor"))
    # never overwrite a report
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err


def test_evaluate_samples_and_plots(trained, tmp_path):
    data, _, npz = trained
    out = tmp_path / "samples_report"
    assert main(["evaluate", "--samples", str(npz), str(data), "--n", "40", "--repeats", "1", "--quick",
                 "--plots", "--out", str(out)]) == 0
    rep = _report(out)
    assert "coverage" in rep and "mmd_latent" in rep  # from the evaluator's own encoder
    assert len(list(out.glob("*.png"))) >= 5


def test_evaluate_bad_inputs(trained, tmp_path, capsys):
    data, final, npz = trained
    assert main(["evaluate", str(final), "--n", "10"]) == 2  # missing DATA_DIR
    assert "expected CKPT DATA_DIR" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((3, MAX_LEN, 8), np.float32))
    assert main(["evaluate", "--samples", str(bad), str(data), "--out", str(tmp_path / "o")]) == 2
    assert "missing arrays" in capsys.readouterr().err
    assert main(["evaluate", "--samples", str(tmp_path / "none.npz"), str(data)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_visualize_writes_figures(trained, tmp_path):
    data, final, _ = trained
    out = tmp_path / "figs"
    assert main(["visualize", str(final), str(data), "--n", "40", "--out", str(out)]) == 0
    pngs = list(out.glob("*.png"))
    assert len(pngs) >= 5 and all(p.stat().st_size > 5000 for p in pngs)


def test_benchmark_sines_runs_and_tabulates(tmp_path, capsys):
    torch.set_num_threads(1)
    over = {"stage1_iterations": 30, "stage2_iterations": 20, "stage1_threshold": 0.0}
    res = run_benchmark("sines", runs=1, preset="tiny", overrides=over, budget=QUICK, max_windows=300,
                        log=lambda s: None, save_samples=tmp_path / "samples", metric_repeats=1)
    assert res.n_windows == 300 and res.features == 5
    real, fake = (np.load(tmp_path / "samples" / f"sines_{name}.npz") for name in ("real", "latent_wgan_run1"))
    assert list(real) == list(fake) == ["X"] and real["X"].shape == fake["X"].shape == (300, 24, 5)
    for col in ("disc", "pred", "context_fid", "correlational"):
        assert np.isfinite(res.runs[col].mean)
    assert 0 <= res.runs["disc"].mean <= 0.5
    table = results_table(res)
    assert "TimeGAN (NeurIPS 2019)" in table and "0.011" in table and "ours" in table
    assert set(PUBLISHED["Diffusion-TS (ICLR 2024)"]) == {"sines", "stocks", "energy"}


def test_benchmark_scores_average_several_classifiers(tmp_path):
    """As the authors' code (metric_iteration 10): a run's discriminative and predictive scores are the
    means over classifiers and predictors with seeds seed, seed + 1, ..."""
    from trajsynth.evaluation.literature import METRIC_REPEATS, score_windows, window_disc
    from trajsynth.metrics.predictive import predictive_score

    rng = np.random.default_rng(0)
    real = rng.uniform(size=(120, 24, 3)).astype(np.float32)
    fake = (real + rng.normal(0, 0.2, real.shape)).clip(0, 1).astype(np.float32)
    budget = Budget(disc=15, pred=15, encoder=5)
    out = score_windows(real, fake, seed=4, budget=budget, repeats=3)
    singles = [window_disc(real, fake, 4 + r, 15) for r in range(3)]
    assert out["disc"] == pytest.approx(np.mean(singles))
    L = np.full(120, 24)
    preds = [predictive_score(fake, L, real, L, seed=4 + r, iterations=15).mean for r in range(3)]
    assert out["pred"] == pytest.approx(np.mean(preds))
    assert METRIC_REPEATS == 10
    with pytest.raises(ValueError, match="metric_repeats"):
        run_benchmark("sines", runs=1, metric_repeats=0)


def test_parallel_classifiers_give_the_same_numbers(trained):
    from trajsynth.evaluation.sources import real_set
    from trajsynth.evaluation.suite import Budget, SuiteResult, _learned_tasks, _run_learned

    data, _, _ = trained
    real, other = real_set(data, "test", 30, 0), real_set(data, "train", 30, 1)
    tasks = _learned_tasks(real, other, other, seed=3, repeats=2, budget=Budget(disc=20, pred=20, encoder=5))
    seq, par = SuiteResult(), SuiteResult()
    _run_learned(seq, tasks, workers=1)
    _run_learned(par, tasks, workers=2)
    assert seq.values == par.values and seq.reference == par.reference
    assert len(seq.values) == 4 and set(seq.reference) == {"disc_strong", "disc_timegan"}
