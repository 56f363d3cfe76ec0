"""A tcn_vae checkpoint on a labelled data directory: activity accuracy from z, and per class the two
discriminative scores (timegan and strong protocols) of class-conditional samples against the real
sequences of that class.

Real sequences of a class are those of ``--splits`` (default: all three, as the TimeGAN protocol scores
against the whole data set; a class of BasicMotions has 20); as many are generated for that class
(decoded with its domain drawn as in training). Each score is |held-out accuracy − 0.5| of a post-hoc
GRU, mean ± std over ``--repeats`` seeds.

    python benchmarks/tcn_vae_classes.py CKPT DATA_DIR [--repeats 5] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from trajsynth.data.directory import load_meta, load_split
from trajsynth.evaluation.sources import activity_accuracy, finished_model
from trajsynth.metrics.discriminative import discriminative_score
from trajsynth.utils.atomic import write_json


def class_sets(data_dir: str, splits: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, L, activity) of the given splits, concatenated."""
    parts = [load_split(data_dir, s, with_paths=False) for s in splits]
    if any(p.activity is None for p in parts):
        raise SystemExit(f"error: {data_dir} has no activity labels")
    return (np.concatenate([p.X for p in parts]), np.concatenate([p.L for p in parts]),
            np.concatenate([p.activity for p in parts]))


def score_class(model, X: np.ndarray, L: np.ndarray, a: int, repeats: int, seed: int) -> dict[str, list[float]]:
    """Both protocols' scores for generated sequences of activity a against the real ones X (n, T, F)."""
    n = len(L)
    gX, gL = model.generate(n, torch.zeros(n, model.cfg.condition_dim), rng=torch.Generator().manual_seed(seed + a),
                            activity=a)
    out = {}
    for proto in ("timegan", "strong"):
        r = discriminative_score(X, L, gX.numpy(), gL.numpy(), protocol=proto, repeats=repeats, seed=seed)
        out[proto] = [r.mean, r.std]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("data_dir")
    p.add_argument("--splits", default="train,val,test", help="real sequences of these splits (comma-separated)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the numbers to this file")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    model = finished_model(a.checkpoint)
    names = load_meta(a.data_dir).get("activity_names") or []
    X, L, act = class_sets(a.data_dir, a.splits.split(","))
    result = {"activity_acc_test": activity_accuracy(a.checkpoint, a.data_dir, "test"), "classes": {}}
    print(f"activity accuracy from z (test): {result['activity_acc_test']:.4f}")
    print("| activity | real | disc_timegan | disc_strong |\n|---|---|---|---|")
    for k in range(int(act.max()) + 1):
        pick = act == k
        s = score_class(model, X[pick], L[pick], k, a.repeats, a.seed)
        name = names[k] if k < len(names) else str(k)
        result["classes"][name] = {"n": int(pick.sum()), **s}
        print(f"| {name} | {int(pick.sum())} | {s['timegan'][0]:.3f} ± {s['timegan'][1]:.3f} | "
              f"{s['strong'][0]:.3f} ± {s['strong'][1]:.3f} |", flush=True)
    if a.json:
        write_json(a.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
