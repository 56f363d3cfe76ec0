"""Generation speed that users feel, for any family's checkpoint, in one JSON object.

* ``traj_s``       trajectories per second of one batched ``sampler.generate(n)`` (n = 4096 by
                   default; median of ``--repeats`` calls after a warm-up call)
* ``path_p50_ms``  median time of one ``sampler.path(start, end)`` call (random start/end pairs
* ``path_p99_ms``  within the model's distance range), and its 99th percentile

Run on an otherwise idle machine: the numbers are the inference thread policy's (``path()`` on one
thread, the batch on the free cores; ``TRAJSYNTH_THREADS`` sets both). ``threads`` and
``path_threads`` say what the two measurements ran with.

    python benchmarks/bench_generate.py CKPT --json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import trajsynth
from trajsynth.models.checkpoint import CheckpointError


def batch_rate(sampler, n: int, repeats: int) -> float:
    sampler.generate(min(n, 256), seed=0)  # warm-up: first-call allocations
    times = []
    for k in range(repeats):
        t0 = time.perf_counter()
        sampler.generate(n, seed=k + 1)
        times.append(time.perf_counter() - t0)
    return n / float(np.median(times))


def path_times(sampler, calls: int, seed: int = 0) -> np.ndarray:
    """Seconds of ``calls`` single path() calls between random points at distances the model was trained on."""
    rng = np.random.default_rng(seed)
    lo, hi = sampler.distance_range
    dist = np.exp(rng.uniform(np.log(max(lo, 1.0)), np.log(hi), calls))
    angle = rng.uniform(-np.pi, np.pi, calls)
    starts = rng.uniform(0, 1000, (calls, 2))
    ends = starts + dist[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    sampler.path(starts[0], ends[0], seed=0)  # warm-up
    out = np.empty(calls)
    for k in range(calls):
        t0 = time.perf_counter()
        sampler.path(starts[k], ends[k], seed=k)
        out[k] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="a finished model of any family")
    ap.add_argument("--n", type=int, default=4096, help="batch size of the batched measurement (default: 4096)")
    ap.add_argument("--repeats", type=int, default=5, help="batched calls timed (default: 5)")
    ap.add_argument("--calls", type=int, default=300, help="path() calls timed (default: 300)")
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    ap.add_argument("--candidates", type=int, default=None,
                    help="an ar_mdn with a critic: movements drawn per kept one (default: as trained)")
    a = ap.parse_args()
    try:
        sampler = trajsynth.load(a.checkpoint, candidates=a.candidates)
    except (CheckpointError, OSError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    t = path_times(sampler, a.calls)
    result = {"family": sampler.family,
              "traj_s": round(batch_rate(sampler, a.n, a.repeats), 1), "n": a.n,
              "path_p50_ms": round(1000 * float(np.median(t)), 3),
              "path_p99_ms": round(1000 * float(np.quantile(t, 0.99)), 3),
              "threads": sampler.threads_for(a.n), "path_threads": sampler.threads_for(1)}
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
