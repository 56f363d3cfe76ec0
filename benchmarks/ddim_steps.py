"""A latent_diffusion checkpoint's sampling at several DDIM step counts: a copy of it per count (to score with
``trajsynth evaluate``) and the batched trajectories per second of each, measured in one run.

Each copy differs from the checkpoint only in the architecture's ``ddim_steps`` (no weight depends on it). The
speeds are ratios measured in the same run on one thread, as ``bench_generate.py`` measures them.

    python benchmarks/ddim_steps.py CKPT --steps 10 25 50 100 --out DIR
    trajsynth evaluate DIR/ddim10.pt DATA --n 2000 --out DIR/eval10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench_generate import batch_rate

import trajsynth
from trajsynth.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def write_copies(ckpt_path: Path, steps: list[int], out: Path) -> list[Path]:
    ckpt = load_checkpoint(ckpt_path)
    if ckpt.get("family") != "latent_diffusion":
        raise SystemExit(f"error: {ckpt_path} holds a {ckpt.get('family')} model, not latent_diffusion")
    paths = [out / f"ddim{k}.pt" for k in steps]
    for path in paths:  # checked before anything is written
        if path.exists():
            raise SystemExit(f"error: {path} already exists")
    out.mkdir(parents=True, exist_ok=True)
    for k, path in zip(steps, paths, strict=True):
        save_checkpoint(path, {**ckpt, "arch": {**ckpt["arch"], "ddim_steps": k}})
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100])
    p.add_argument("--out", type=Path, required=True, help="folder for the copies ddim<k>.pt")
    p.add_argument("--n", type=int, default=2000, help="trajectories per timed call")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    rates = {}
    try:
        for k, path in zip(a.steps, write_copies(a.checkpoint, a.steps, a.out), strict=True):
            rates[k] = batch_rate(trajsynth.load(path), a.n, a.repeats)
    except CheckpointError as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps({"checkpoint": str(a.checkpoint), "n": a.n, "traj_s": rates}))


if __name__ == "__main__":
    main()
