"""The ceiling probe on a literature benchmark: a family's own reconstructions of the real windows, scored
like its generated windows, and where along the window each set bends more than the real one.

Trains one model (``trajsynth benchmark``'s protocol: min-max scaled stride-1 windows of 24 steps, one
constant condition), then scores with the TimeGAN discriminative protocol (|accuracy − 0.5|):

- ``generated``: as many generated windows as real ones (what ``benchmark`` scores);
- ``reconstructed``: every real window through the family's autoencoder (each of its reconstruction
  paths). No generator that decodes through that autoencoder can be expected to do better.

and prints, for the real, reconstructed and generated windows, the mean |second difference| (the
curvature of a window) at each step, over windows and features.

    python benchmarks/series_ceiling.py --dataset sines --family timegan [--preset fast] [--seed 0]
        [--set KEY=VALUE ...] [--json OUT.json]

``--max-windows`` and ``--disc-iterations`` shrink the protocol for smoke tests only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

import numpy as np

from trajsynth.config import parse_overrides
from trajsynth.data.timeseries import load_benchmark
from trajsynth.evaluation.literature import reconstruct_windows, sample_windows, train_unconditional, window_disc
from trajsynth.utils.atomic import write_json


def curvature_by_step(X: np.ndarray) -> list[float]:
    """Mean |x_{t+2} − 2 x_{t+1} + x_t| at each t (T − 2 values), over windows and features."""
    return [round(float(v), 5) for v in np.abs(np.diff(X, 2, axis=1)).mean(axis=(0, 2))]


def ceiling(a: argparse.Namespace) -> dict | None:
    """Train one model, then score its generated windows and its reconstructions (None: no autoencoder)."""
    X, _ = load_benchmark(a.dataset, seed=a.seed)
    X = X[: a.max_windows] if a.max_windows else X  # the windows are already shuffled
    with tempfile.TemporaryDirectory(prefix="trajsynth-ceiling-") as run_dir:
        trainer = train_unconditional(a.family, X, a.preset, parse_overrides(a.overrides), a.seed, run_dir)
    model = trainer.model
    paths = list(getattr(model, "reconstruction_paths", {}))
    if not paths:
        return None
    sets = {"generated": sample_windows(trainer, len(X), a.seed)}
    sets.update({f"reconstructed ({path})": reconstruct_windows(model, X, path) for path in paths})
    out = {"dataset": a.dataset, "family": a.family, "preset": a.preset, "seed": a.seed,
           "curvature_by_step": {"real": curvature_by_step(X)}, "disc": {}}
    for name, fake in sets.items():
        out["disc"][name] = window_disc(X, fake, a.seed, a.disc_iterations)
        out["curvature_by_step"][name] = curvature_by_step(fake)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, choices=["sines", "stocks", "energy"])
    p.add_argument("--family", default="timegan")
    p.add_argument("--preset", default="fast")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--max-windows", type=int, help="use only this many windows (smoke tests)")
    p.add_argument("--disc-iterations", type=int, help="the classifier's iterations (default: the protocol's)")
    a = p.parse_args(argv)
    for name in ("max_windows", "disc_iterations"):
        if getattr(a, name) is not None and getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    out = ceiling(a)
    if out is None:
        print(f"error: family {a.family} has no autoencoder to reconstruct with", file=sys.stderr)
        return 2
    if a.json:
        write_json(a.json, out)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
