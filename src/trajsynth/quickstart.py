"""The main job: train on the embedded data, generate for the test users' distances, save samples and a plot."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import numpy as np

from .data.directory import load_split
from .data.train_data import load_train_data
from .figures.quicklook import compare_paths
from .models.registry import DEFAULT_FAMILY
from .serving.export import describe, write_samples
from .serving.sampler import TrajectorySampler
from .training.loop import Trainer
from .training.runs import new_run_dir
from .training.setup import build_run_config


def run_quickstart(data_dir: Path, out: str, n: int, values: dict, family: str = DEFAULT_FAMILY,
                   preset: str = "fast") -> Path:
    """Train ``family`` (preset ``preset``) on ``data_dir``, generate n test-split movements; returns the run folder.

    Raises ``TrainingDiverged`` if a loss turns non-finite.
    """
    t0 = time.perf_counter()
    data = load_train_data(data_dir)
    run_cfg = build_run_config(family, preset, values, data.train.max_len)
    run = new_run_dir(out)
    print(f"\nTraining {family} (preset '{preset}') into {run}")
    final = Trainer(run_cfg, data, run, tensorboard=True, progress=True).train()
    test = load_split(data_dir, "test")
    n = min(n, len(test))
    g = TrajectorySampler.from_checkpoint(final).generate(n, seed=0, conditions=test.C[:n])
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    npz, png = run / f"generated_samples_{stamp}.npz", run / f"trajectory_comparison_{stamp}.png"
    write_samples(npz, g)
    compare_paths([test.path(i) for i in range(n)], g.paths, png, title="SapiMouse test users vs generated")
    real_len = test.L[:n]
    print(f"\nGenerated {describe(g)}")
    print(f"  real test trajectories: points p50 {np.median(real_len):.0f} (range {real_len.min()}-{real_len.max()})")
    print(f"  wrote {npz}\n  wrote {png}\n  model {final}")
    print(f"quickstart finished in {time.perf_counter() - t0:.0f} s")
    return run
