"""The benchmark scripts that feed the README: they run on a real (tiny) model and real report files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trajsynth.data.sets import TrajectorySet
from trajsynth.data.train_data import load_train_data
from trajsynth.models.registry import run_config
from trajsynth.training.loop import Trainer

ROOT = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def procedural_ckpt(model_data_dir, tmp_path_factory) -> Path:
    """A tiny procedural model (seconds to fit): both benchmark scripts take any family's checkpoint."""
    data = load_train_data(model_data_dir)
    return Trainer(run_config("procedural", "tiny", max_seq_len=data.train.max_len), data,
                   tmp_path_factory.mktemp("bench_model"), tensorboard=False, progress=False, log_lines=False).train()


def test_bench_generate_prints_one_json_object(procedural_ckpt, tmp_path):
    r = run_script("bench_generate.py", str(procedural_ckpt), "--json", "--n", "256", "--repeats", "2", "--calls", "20")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["family"] == "procedural" and out["n"] == 256 and out["threads"] >= 1
    assert out["traj_s"] > 0 and 0 < out["path_p50_ms"] <= out["path_p99_ms"]
    (tmp_path / "text.pt").write_text("not a checkpoint")
    bad = run_script("bench_generate.py", str(tmp_path / "text.pt"))
    assert bad.returncode == 1 and bad.stderr.strip() == f"error: {tmp_path / 'text.pt'} is not a trajsynth " \
        "checkpoint (not a PyTorch file)"


def bench_serve(ckpt: Path, seconds: float, clients: int, malformed: int, *more: str) -> dict:
    """bench_serve.py's JSON object (the serve extra is needed)."""
    pytest.importorskip("fastapi", reason="the serve extra (pip install 'trajsynth[serve]') is not installed")
    r = run_script("bench_serve.py", str(ckpt), "--json", "--seconds", str(seconds), "--clients", str(clients),
                   "--malformed", str(malformed), *more)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_bench_serve_prints_one_json_object(procedural_ckpt):
    out = bench_serve(procedural_ckpt, 1.5, 4, 20)
    assert out["family"] == "procedural" and out["clients"] == 4 and out["errors"] == 0
    assert out["requests"] > 0 and out["requests_s"] > 0 and 0 < out["p50_ms"] <= out["p99_ms"]
    bad = out["malformed"]
    assert bad["sent"] == bad["answered_4xx"] == 20 and bad["still_answering"] is True
    assert len(bad["by_kind"]) == 10 and all(set(by) <= {"400", "401", "413", "422"} for by in bad["by_kind"].values())
    assert set(out["rss_mb"]) == {"start", "after_load", "after_malformed"}


def test_realism_table_rows(tmp_path):
    report = {"disc_strong": 0.2213, "disc_timegan": 0.214, "kinematic_detector_acc": 0.641, "coverage": 0.88,
              "cond_rel_err_median": 0.0005, "w1_movement_time": 39.2, "fitts_slope_fake": 97.0,
              "fitts_slope_real": 65.1, "fitts_intercept_fake": 431.0, "fitts_intercept_real": 606.8,
              "ref_disc_strong": 0.029, "ref_disc_timegan": 0.04, "ref_kinematic_detector_acc": 0.569,
              "ref_coverage": 0.95, "ref_w1_movement_time": 51.0}
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "report.json").write_text(json.dumps(report))
    r = run_script("realism_table.py", f"mine={tmp_path / 'eval'},train=7 min,traj_s=1536")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4 and all(line.count("|") == 12 for line in lines)
    assert lines[2].startswith("| mine | 0.221 | 0.214 | 0.641 | 0.88 | 0.05 % | 39 | 97 (real 65) | 431 (real 607)")
    assert lines[2].endswith("| 7 min | 1536 |") and lines[3].startswith("| real vs real (reference) | 0.029 | 0.040")
    bad = run_script("realism_table.py", f"x={tmp_path / 'missing'}")
    assert bad.returncode != 0 and "not a readable evaluation report" in bad.stderr


def test_bench_serve_counts_the_model_worker(ar_mdn_ckpt):
    """The default server of a step-by-step model has a worker process: its memory and CPU are counted too."""
    out = bench_serve(ar_mdn_ckpt, 1.5, 4, 0)
    assert out["family"] == "ar_mdn" and out["errors"] == 0 and out["requests"] > 0
    alone = bench_serve(ar_mdn_ckpt, 0.5, 1, 0, "--workers", "0")
    assert out["rss_mb"]["start"] > alone["rss_mb"]["start"] + 100  # a second torch and model


def test_fitts_splits_of_a_data_dir(model_data_dir):
    r = run_script("fitts_splits.py", str(model_data_dir), "--json", "--n", "20", "--draws", "5")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"train", "val", "test", "test_draws_of_20"}
    assert all(np.isfinite(out[s]["slope"]) and 0 <= out[s]["r2"] <= 1 for s in ("train", "val", "test"))
    lo, mid, hi = out["test_draws_of_20"]["slope"]
    assert lo <= mid <= hi


def test_fitts_splits_fits_a_models_movements_per_split(model_data_dir, ar_mdn_ckpt):
    r = run_script("fitts_splits.py", str(model_data_dir), "--json", "--n", "20", "--draws", "3",
                   "--checkpoint", str(ar_mdn_ckpt), "--model-draws", "2")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for split in ("train", "val", "test"):
        m = out[split]["model"]
        assert np.isclose(m["ratio"]["slope"], m["slope"] / out[split]["slope"], rtol=1e-2, atol=1e-3)
        lo, hi = m["single_draws"]["slope"]
        assert lo <= hi
    bad = run_script("fitts_splits.py", str(model_data_dir), "--checkpoint", str(ar_mdn_ckpt), "--model-draws", "0")
    assert bad.returncode != 0 and "--model-draws must be >= 1, got 0" in bad.stderr


def test_series_ceiling_scores_generated_and_reconstructed_windows(tmp_path):
    out = tmp_path / "ceiling.json"
    r = run_script("series_ceiling.py", "--dataset", "sines", "--family", "timegan", "--preset", "tiny",
                   "--max-windows", "300", "--disc-iterations", "20", "--json", str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert set(res["disc"]) == {"generated", "reconstructed (autoencoder)"}
    assert all(0 <= v <= 0.5 for v in res["disc"].values())
    curves = res["curvature_by_step"]
    assert set(curves) == {"real", "generated", "reconstructed (autoencoder)"}
    assert all(len(c) == 22 and min(c) >= 0 for c in curves.values())  # 24 steps: 22 second differences
    bad = run_script("series_ceiling.py", "--dataset", "sines", "--max-windows", "0")
    assert bad.returncode == 2 and "--max-windows must be >= 1, got 0" in bad.stderr


def test_filter_probe_keeps_one_candidate_per_test_movement(ar_mdn_ckpt, model_data_dir, tmp_path):
    out = tmp_path / "kept.npz"
    r = run_script("filter_probe.py", str(ar_mdn_ckpt), str(model_data_dir), "--out", str(out), "--candidates", "3",
                   "--n", "20", "--n-train", "60", "--critic-iterations", "30")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout.splitlines()[-2])
    assert stats["candidates"] == 3 and stats["mean_logit_kept"] >= stats["mean_logit_all"] - 0.5
    kept = np.load(out)
    real = TrajectorySet.from_split(model_data_dir, "test", 20, 0)
    ends = kept["paths_points"][kept["paths_offsets"][1:] - 1, 1:]
    assert np.array_equal(ends, np.stack([p[-1, 1:] for p in real.paths]).astype(np.float32)), \
        "each kept movement goes to its test movement's end point"
    again = run_script("filter_probe.py", str(ar_mdn_ckpt), str(model_data_dir), "--out", str(out))
    assert again.returncode == 1 and again.stderr.strip() == f"error: {out} already exists; choose another output file"
