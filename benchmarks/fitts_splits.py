"""How far Fitts's law fits of real movements differ between groups of people: each split's fit, and the
spread of the test users' fit over random draws of ``--n`` of their movements, in one JSON object.

A generated set is compared with the test users' fit; this says how close another set of real
movements comes (the real-vs-real yardstick for the Fitts rows of the realism table).

    python benchmarks/fitts_splits.py DATA_DIR [--n 2000] [--draws 20] [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from trajsynth.data.directory import load_split
from trajsynth.metrics.kinematics import fitts_regression, kinematic_features


def split_fit(data_dir: str, split: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The Fitts fit of every movement of a split, and the kinematic features it was fitted on."""
    s = load_split(data_dir, split)
    if s.points is None:
        raise SystemExit(f"error: {data_dir} has no paths_{split}.npz (pixel paths are needed for Fitts fits)")
    f = kinematic_features([s.path(i) for i in range(len(s))])
    return fitts_regression(f["distance"], f["movement_time"]), f


def draws(f: dict[str, np.ndarray], n: int, k: int, seed: int = 0) -> dict[str, list[float]]:
    """5th, 50th and 95th percentile of slope and intercept over k draws of n movements (without replacement)."""
    rng = np.random.default_rng(seed)
    n = min(n, len(f["distance"]))
    fits = [fitts_regression(f["distance"][i], f["movement_time"][i])
            for i in (rng.choice(len(f["distance"]), n, replace=False) for _ in range(k))]
    return {key: np.percentile([r[key] for r in fits], [5, 50, 95]).round(1).tolist() for key in ("slope", "intercept")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", help="a processed mouse data directory (trajsynth preprocess)")
    ap.add_argument("--n", type=int, default=2000, help="movements per draw of the test users (default: 2000)")
    ap.add_argument("--draws", type=int, default=20, help="draws of the test users (default: 20)")
    ap.add_argument("--json", action="store_true", help="one line of JSON")
    a = ap.parse_args()
    out, test = {}, None
    for split in ("train", "val", "test"):
        fit, f = split_fit(a.data_dir, split)
        out[split] = {k: round(v, 3) for k, v in fit.items()}
        test = f if split == "test" else test
    out[f"test_draws_of_{a.n}"] = draws(test, a.n, a.draws)
    print(json.dumps(out) if a.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
