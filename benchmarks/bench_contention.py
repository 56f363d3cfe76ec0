"""Speed on a busy machine: the thread policy against torch's defaults, measured in one run.

With the machine idle, then with one busy background process (a second training of the default
model, started the way a user starts it: ``trajsynth train``), it measures

* ``path_p50_ms``    one ``sampler.path()`` call of the default latent_wgan model (median of many)
* ``sample_traj_s``  ``sampler.sample(1000)`` trajectories per second
* ``train_it_s``     stage-1 iterations per second of the default model (``Trainer``, batch 64)

and, for the search, trials per minute of ``trajsynth tune --jobs 1`` and ``--jobs 2`` (short stage-1
trials of the ``fast`` preset, idle machine). Ratios are under ``ratios``; the targets are
``train_busy_vs_idle`` >= 0.5, ``path_p50_ms`` <= 5 and ``sample_traj_s`` >= 4000 when busy, and
``tune_jobs2_vs_jobs1`` >= 1.5.

    python benchmarks/bench_contention.py --json
    python benchmarks/bench_contention.py --json --torch-defaults   # the same without the policy
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trajsynth.data.embedded import embedded_data_dir
from trajsynth.data.train_data import load_train_data
from trajsynth.models.registry import get_family, run_config
from trajsynth.serving.sampler import TrajectorySampler
from trajsynth.training.loop import Trainer
from trajsynth.utils.threads import cores


def default_model(data, out: Path) -> Path:
    """A briefly trained default-preset model (its speed, not its quality, is what is measured here)."""
    run = run_config("latent_wgan", "default", max_seq_len=data.train.max_len, stage1_iterations=300,
                     stage2_iterations=300, stage1_min_iterations=300, eval_interval=300, save_interval=300)
    return Trainer(run, data, out, tensorboard=False, progress=False, log_lines=False).train()


def sampler_and_trainer(ckpt: Path, data, threads: int | None
                        ) -> tuple[TrajectorySampler, Trainer, tempfile.TemporaryDirectory]:
    sampler = TrajectorySampler.from_checkpoint(ckpt)
    sampler.threads = threads or sampler.threads
    run = run_config("latent_wgan", "default", max_seq_len=data.train.max_len)
    tmp = tempfile.TemporaryDirectory()
    tr = Trainer(run, data, tmp.name, tensorboard=False, progress=False, log_lines=False, threads=threads)
    return sampler, tr, tmp


def measure(ckpt: Path, data, threads: int | None, seconds: float) -> dict:
    sampler, tr, tmp = sampler_and_trainer(ckpt, data, threads)
    with tmp:
        sampler.path((0, 0), (300, 200), seed=0)  # warm-up
        times, t_end = [], time.perf_counter() + seconds
        while time.perf_counter() < t_end or len(times) < 20:
            t0 = time.perf_counter()
            sampler.path((0, 0), (300, 200), seed=len(times))
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sampler.sample(1000, seed=1)
        sample_s = time.perf_counter() - t0
        step = tr.training.stage1_step
        step()  # warm-up
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            step()
            n += 1
        return {"path_p50_ms": round(1000 * float(np.median(times)), 3),
                "path_p99_ms": round(1000 * float(np.quantile(times, 0.99)), 3),
                "sample_traj_s": round(1000 / sample_s, 1), "train_it_s": round(n / (time.perf_counter() - t0), 2),
                "train_threads": torch.get_num_threads()}


def background_training(out: Path, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "trajsynth", "train", "--preset", "default", "--no-tensorboard", "--quiet",
           "--out", str(out), "--set", "stage1_iterations=1000000"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def equal_cost_space(path: Path) -> Path:
    """A search space in which every trial costs the same: only the learning rate varies (the default space
    also searches layer sizes and batch size, so trial cost would depend on what the sampler drew)."""
    names = [k for k in get_family("latent_wgan").search_space["stage1"] if k != "lr_autoencoder"]
    path.write_text("stage1:\n" + "".join(f"  {k}: null\n" for k in names))
    return path


def tune_rate(out: Path, jobs: int, trials_per_job: int, env: dict) -> float:
    """Trials per minute of one ``tune`` call with ``jobs`` worker processes (equal-cost trials)."""
    out.mkdir(parents=True)
    space = equal_cost_space(out / "space.yaml")
    cmd = [sys.executable, "-m", "trajsynth", "tune", "--n-trials", str(jobs * trials_per_job), "--jobs", str(jobs),
           "--preset", "fast", "--set", "stage1_iterations=150", "--set", "eval_interval=75", "--no-baselines",
           "--space", str(space), "--seed", "0", "--out", str(out / "study")]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return jobs * trials_per_job / ((time.perf_counter() - t0) / 60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", nargs="?", help="a finished default-preset latent_wgan model (default: train one "
                    "briefly on the embedded data)")
    ap.add_argument("--seconds", type=float, default=8.0, help="timing window of each measurement")
    ap.add_argument("--trials", type=int, default=4, help="tuning trials per worker")
    ap.add_argument("--torch-defaults", action="store_true",
                    help="no policy: torch's default threads everywhere (the background job too)")
    ap.add_argument("--skip-tune", action="store_true")
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    a = ap.parse_args()
    data = load_train_data(embedded_data_dir(), validate=False)
    env = dict(os.environ)
    threads = None
    if a.torch_defaults:
        threads = torch.get_num_threads()
        env["TRAJSYNTH_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(a.checkpoint) if a.checkpoint else default_model(data, Path(tmp) / "model")
        idle = measure(ckpt, data, threads, a.seconds)
        bg = background_training(Path(tmp) / "bg", env)
        try:
            time.sleep(12)  # start-up: data, model, first steps
            busy = measure(ckpt, data, threads, a.seconds)
        finally:
            bg.kill()
            bg.wait()
        tune = {} if a.skip_tune else {f"tune_trials_per_min_jobs{j}": round(tune_rate(Path(tmp) / f"t{j}", j,
                                                                                         a.trials, env), 2)
                                       for j in (1, 2)}
    ratios = {"train_busy_vs_idle": round(busy["train_it_s"] / idle["train_it_s"], 3)}
    if tune:
        ratios["tune_jobs2_vs_jobs1"] = round(tune["tune_trials_per_min_jobs2"] / tune["tune_trials_per_min_jobs1"], 3)
    result = {"idle": idle, "busy": busy, **tune, "ratios": ratios, "cores": cores(),
              "policy": "torch defaults" if a.torch_defaults else "trajsynth"}
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
