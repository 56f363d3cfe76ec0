"""Verdicts of the kinematic detector and of the embedding figure's 1-NN accuracy on probes whose
answer is known, with the test and validation users of the embedded SapiMouse sample (or --data-dir):

* ``real_vs_real``: two disjoint random halves of the movements → both scores ≈ 0.5;
* ``real_vs_shuffled``: one half against the same movements with their steps (dt, dx, dy) in a
  random order (same end point, duration, path length and sample count) → clearly above 0.5;
* ``real_vs_reversed``: one half against the same movements run backwards in time, point-reflected
  so that they still go from (0, 0) to the same end point → above 0.5 where human movements are
  asymmetric in time (a fast start, a long homing phase).

The detector is :func:`~trajsynth.metrics.detector.kinematic_detector` (5 folds); the 1-NN
accuracies are those printed on the PCA and t-SNE panels of the embedding figure.

    python benchmarks/probe_verdicts.py
    python benchmarks/probe_verdicts.py --data-dir data/sapimouse --tsne-iter 1000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from trajsynth.data.directory import load_params
from trajsynth.data.embedded import embedded_data_dir
from trajsynth.data.features import paths_to_features
from trajsynth.data.sets import TrajectorySet
from trajsynth.figures.embedding import embed_sets
from trajsynth.metrics.detector import kinematic_detector


def pooled(data_dir: Path, splits: tuple[str, ...] = ("test", "val")) -> TrajectorySet:
    """Every movement of the given splits in one set."""
    parts = [TrajectorySet.from_split(data_dir, s) for s in splits]
    return TrajectorySet(np.concatenate([p.X for p in parts]), np.concatenate([p.L for p in parts]),
                         np.concatenate([p.C for p in parts]), [q for p in parts for q in p.paths],
                         name="+".join(splits))


def shuffled(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Path (n, 3) from (0, 0, 0) rebuilt from its own step increments in a random order."""
    steps = np.diff(p, axis=0)  # (n - 1, 3)
    return np.vstack([np.zeros((1, 3)), np.cumsum(steps[rng.permutation(len(steps))], axis=0)])


def reversed_in_time(p: np.ndarray) -> np.ndarray:
    """Path (n, 3) run backwards: q(t) = end − p(T − t), so it still goes from (0, 0, 0) to the end."""
    return p[-1] - p[::-1]


def transformed(s: TrajectorySet, paths: list[np.ndarray], data_dir: Path, name: str) -> TrajectorySet:
    """The set with new paths, its features recomputed by the data pipeline's own code."""
    X, _, L = paths_to_features(paths, s.X.shape[1], load_params(data_dir))
    return TrajectorySet(X, L, s.C, paths, name=name)


def build_probes(data_dir: Path, seed: int = 0) -> dict[str, tuple[TrajectorySet, TrajectorySet]]:
    """The three probes as (real, other) pairs of sets."""
    s = pooled(data_dir)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(s))
    a, b = s.subset(np.sort(order[: len(s) // 2])), s.subset(np.sort(order[len(s) // 2 :]))
    return {
        "real_vs_real": (a, b),
        "real_vs_shuffled": (a, transformed(a, [shuffled(p, rng) for p in a.paths], data_dir, "shuffled")),
        "real_vs_reversed": (a, transformed(a, [reversed_in_time(p) for p in a.paths], data_dir, "reversed")),
    }


def score(real: TrajectorySet, other: TrajectorySet, seed: int, tsne_iter: int) -> dict[str, float]:
    t0 = time.perf_counter()
    det = kinematic_detector(real.paths, other.paths, seed=seed)
    t1 = time.perf_counter()
    nn = embed_sets(real, other, max_per_set=1000, seed=seed, tsne_iter=tsne_iter).nn_accuracy()
    return {"n_per_set": len(real), "detector_acc": det["accuracy_mean"],
            "detector_logistic_acc": det["logistic_accuracy_mean"],
            "detector_boosted_acc": det["boosted_accuracy_mean"], "nn1_pca_acc": nn["pca"],
            "nn1_tsne_acc": nn["tsne"], "detector_s": round(t1 - t0, 2),
            "embedding_s": round(time.perf_counter() - t1, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=None, help="processed data dir (default: the embedded sample)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tsne-iter", type=int, default=500)
    a = ap.parse_args()
    data_dir = a.data_dir or embedded_data_dir()
    probes = build_probes(data_dir, a.seed)
    print(json.dumps({name: score(*pair, a.seed, a.tsne_iter) for name, pair in probes.items()}, indent=2))


if __name__ == "__main__":
    main()
