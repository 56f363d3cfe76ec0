"""Sanity figures of the evaluation metrics on real data, in one run.

* real vs real (SapiMouse test users vs training users): discriminative ≈ 0, MMD ≈ 0
* real vs time-shuffled real (each movement's valid steps permuted): ``strong`` ≥ 0.25
* real vs uniform noise on the valid steps: ≥ 0.45
* the predictive "Original" row on Stocks (train on 80 % of the windows, test on the rest),
  published as 0.036 in the TimeGAN paper

    python benchmarks/metric_sanity.py --json
    python benchmarks/metric_sanity.py --data-dir data/sapimouse --n 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from trajsynth.data.timeseries import load_benchmark
from trajsynth.evaluation.sources import real_set
from trajsynth.metrics.discriminative import discriminative_score
from trajsynth.metrics.distribution import sequence_mmd
from trajsynth.metrics.predictive import predictive_score

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def sapimouse_dir(data_dir: str | None) -> Path:
    if data_dir:
        return Path(data_dir)
    if not (SHARED / "sapimouse").is_dir():
        sys.exit(f"no --data-dir given and {SHARED / 'sapimouse'} is absent")
    from trajsynth.data.preprocess import preprocess

    out = Path(tempfile.mkdtemp(prefix="metric-sanity-")) / "sapimouse"
    preprocess(SHARED / "sapimouse", out, progress=False)
    return out


def time_shuffled(X: np.ndarray, L: np.ndarray, seed: int) -> np.ndarray:
    """Each sequence's valid steps in a random order (same values, broken dynamics)."""
    rng = np.random.default_rng(seed)
    out = X.copy()
    for i, n in enumerate(L):
        out[i, :n] = X[i, rng.permutation(n)]
    return out


def uniform_noise(X: np.ndarray, L: np.ndarray, seed: int) -> np.ndarray:
    valid = np.arange(X.shape[1])[None, :, None] < L[:, None, None]  # (N, T, 1)
    noise = np.random.default_rng(seed).uniform(-1, 1, X.shape).astype(np.float32)
    return np.where(valid, noise, 0.0).astype(np.float32)


def disc_pair(real, X, L) -> dict[str, float]:
    return {p: discriminative_score(real.X, real.L, X, L, protocol=p).mean for p in ("timegan", "strong")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="processed SapiMouse dir (default: preprocess ../shared into a temp dir)")
    ap.add_argument("--n", type=int, default=2000, help="trajectories per set")
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    a = ap.parse_args()
    t0 = time.perf_counter()
    d = sapimouse_dir(a.data_dir)
    real, other = real_set(d, "test", a.n, 0), real_set(d, "train", a.n, 1)
    out = {"n": len(real), "real_vs_real": {**disc_pair(real, other.X, other.L),
                                            "mmd": sequence_mmd(real.X, real.L, other.X, other.L)}}
    out["real_vs_time_shuffled"] = disc_pair(real, time_shuffled(other.X, other.L, 0), other.L)
    out["real_vs_noise"] = disc_pair(real, uniform_noise(other.X, other.L, 0), other.L)
    X, _ = load_benchmark("stocks", path=SHARED / "timegan")
    cut, L = int(0.8 * len(X)), np.full(len(X), X.shape[1])
    out["stocks_pred_original"] = predictive_score(X[:cut], L[:cut], X[cut:], L[cut:]).mean
    out["published_stocks_pred_original"] = 0.036
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out) if a.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
