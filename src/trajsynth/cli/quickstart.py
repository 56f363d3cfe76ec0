"""The main job: train on the embedded data, generate for the test users' distances, save samples and a plot."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import numpy as np

from ..config import parse_overrides
from ..data.directory import load_split
from ..figures.quicklook import compare_paths
from ..models.latent_wgan.config import get_config
from ..serving.export import describe, write_samples
from ..serving.sampler import TrajectorySampler
from ..training.data import load_train_data
from ..training.runs import new_run_dir
from ..training.two_stage import TrainingDiverged, TwoStageTrainer


def run_quickstart(data_dir: Path, out: str, n: int, sets: list[str]) -> int:
    t0 = time.perf_counter()
    data = load_train_data(data_dir)
    cfg = get_config("fast", max_seq_len=data.train.max_len, **parse_overrides(sets))
    run = new_run_dir(out)
    print(f"\nTraining (preset 'fast') into {run}")
    tr = TwoStageTrainer(cfg, data, run, tensorboard=True, progress=True)
    try:
        tr.train()
    except TrainingDiverged as e:
        print(f"error: {e}")
        return 1
    test = load_split(data_dir, "test")
    n = min(n, len(test))
    g = TrajectorySampler.from_checkpoint(run / "final.pt").generate(n, seed=0, conditions=test.C[:n])
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    npz, png = run / f"generated_samples_{stamp}.npz", run / f"trajectory_comparison_{stamp}.png"
    write_samples(npz, g)
    compare_paths([test.path(i) for i in range(n)], g.paths, png, title="SapiMouse test users vs generated")
    real_len = test.L[:n]
    print(f"\nGenerated {describe(g)}")
    print(f"  real test trajectories: points p50 {np.median(real_len):.0f} (range {real_len.min()}-{real_len.max()})")
    print(f"  wrote {npz}\n  wrote {png}\n  model {run / 'final.pt'}")
    print(f"quickstart finished in {time.perf_counter() - t0:.0f} s")
    return 0
