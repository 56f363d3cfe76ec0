"""How far Fitts's law fits of real movements differ between groups of people: each split's fit, and the
spread of the test users' fit over random draws of ``--n`` of their movements, in one JSON object.

A generated set is compared with the test users' fit; this says how close another set of real
movements comes (the real-vs-real yardstick for the Fitts rows of the realism table).

With ``--checkpoint CKPT`` it also fits a model's movements, drawn ``--model-draws`` times to every
end point of each split (a directed model; a distance-only one to each movement's distance) and
pooled, so the model's own line is measured without the noise of one draw, and says how far that
line is from each group of people's: ``model`` per split (pooled fit, ``ratio`` to the split's
fit, and the range of the single draws' slopes and intercepts).

    python benchmarks/fitts_splits.py DATA_DIR [--n 2000] [--draws 20] [--checkpoint CKPT] [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from trajsynth.data.directory import load_split
from trajsynth.metrics.kinematics import fitts_regression, kinematic_features


def split_fit(data_dir: str, split: str) -> tuple[dict[str, float], dict[str, np.ndarray], np.ndarray]:
    """The Fitts fit of every movement of a split, the kinematic features it was fitted on, and the
    movements' end points (n, 2) px from their starts."""
    s = load_split(data_dir, split)
    if s.points is None:
        raise SystemExit(f"error: {data_dir} has no paths_{split}.npz (pixel paths are needed for Fitts fits)")
    paths = [s.path(i) for i in range(len(s))]
    f = kinematic_features(paths)
    ends = np.stack([p[-1, 1:] for p in paths]).astype(np.float64)
    return fitts_regression(f["distance"], f["movement_time"]), f, ends


def draws(f: dict[str, np.ndarray], n: int, k: int, seed: int = 0) -> dict[str, list[float]]:
    """5th, 50th and 95th percentile of slope and intercept over k draws of n movements (without replacement)."""
    rng = np.random.default_rng(seed)
    n = min(n, len(f["distance"]))
    fits = [fitts_regression(f["distance"][i], f["movement_time"][i])
            for i in (rng.choice(len(f["distance"]), n, replace=False) for _ in range(k))]
    return {key: np.percentile([r[key] for r in fits], [5, 50, 95]).round(1).tolist() for key in ("slope", "intercept")}


def model_fit(sampler, ends: np.ndarray, real: dict[str, float], k: int) -> dict:
    """The model's Fitts fit over k draws to the end points ``ends`` (n, 2) px (pooled), its ratio to the
    people's fit ``real``, and the range of the k single draws' fits."""
    dist, mt, single = [], [], []
    for seed in range(k):
        g = sampler.generate(len(ends), seed=seed, targets=ends) if sampler.directed else \
            sampler.generate(len(ends), distance_px=np.hypot(ends[:, 0], ends[:, 1]), seed=seed)
        gf = kinematic_features(g.paths)
        dist.append(gf["distance"]), mt.append(gf["movement_time"])
        single.append(fitts_regression(gf["distance"], gf["movement_time"]))
    pooled = fitts_regression(np.concatenate(dist), np.concatenate(mt))
    out = {key: round(pooled[key], 3) for key in ("slope", "intercept")}
    out["ratio"] = {key: round(pooled[key] / real[key], 3) for key in ("slope", "intercept")}
    out["single_draws"] = {key: [round(min(r[key] for r in single), 1), round(max(r[key] for r in single), 1)]
                           for key in ("slope", "intercept")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", help="a processed mouse data directory (trajsynth preprocess)")
    ap.add_argument("--n", type=int, default=2000, help="movements per draw of the test users (default: 2000)")
    ap.add_argument("--draws", type=int, default=20, help="draws of the test users (default: 20)")
    ap.add_argument("--checkpoint", help="also fit this model's movements to each split's end points")
    ap.add_argument("--model-draws", type=int, default=10, help="draws of the model per split, pooled (default: 10)")
    ap.add_argument("--json", action="store_true", help="one line of JSON")
    a = ap.parse_args()
    if a.model_draws < 1:
        raise SystemExit(f"error: --model-draws must be >= 1, got {a.model_draws}")
    sampler = _sampler(a.checkpoint) if a.checkpoint else None
    out, test = {}, None
    for split in ("train", "val", "test"):
        fit, f, ends = split_fit(a.data_dir, split)
        out[split] = {k: round(v, 3) for k, v in fit.items()}
        if sampler is not None:
            out[split]["model"] = model_fit(sampler, ends, fit, a.model_draws)
        test = f if split == "test" else test
    out[f"test_draws_of_{a.n}"] = draws(test, a.n, a.draws)
    print(json.dumps(out) if a.json else json.dumps(out, indent=2))


def _sampler(checkpoint: str):
    import trajsynth
    from trajsynth.models.checkpoint import CheckpointError

    try:
        return trajsynth.load(checkpoint)
    except (CheckpointError, OSError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
