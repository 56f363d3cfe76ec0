"""Plain-number summary of a data directory (what ``trajsynth summarize`` prints)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .directory import SPLITS, load_meta, load_params, load_split
from .features import condition_to_distance
from .loading import LengthAwareBatchSampler, padding_fraction, zscore_filter


def padding_report(lengths: np.ndarray, batch_size: int = 64, seed: int = 0) -> dict[str, float]:
    """Padding share of random batches vs length-aware batches, same batch size."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    random_batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    aware = [np.asarray(b) for b in LengthAwareBatchSampler(lengths, batch_size, seed=seed)]
    r, a = padding_fraction(lengths, random_batches), padding_fraction(lengths, aware)
    return {"random": r, "length_aware": a, "step_reduction": 1 - (1 - r) / (1 - a)}


def summarize(data_dir: str | Path, batch_size: int = 64) -> dict:
    meta, params = load_meta(data_dir), load_params(data_dir)
    out: dict = {"data_dir": str(data_dir), "max_seq_len": meta.get("max_seq_len"), "splits": {}}
    for split in SPLITS:
        s = load_split(data_dir, split)
        if len(s) == 0:
            out["splits"][split] = {"movements": 0}
            continue
        dist = condition_to_distance(s.C, params)
        dur = s.points[s.offsets[1:] - 1, 0]  # time of each path's last point
        keep, filt = zscore_filter(s.X, s.L)
        q = lambda v: [round(float(x), 1) for x in np.percentile(v, [5, 50, 95])]
        out["splits"][split] = {
            "movements": len(s),
            "users": len(set(s.user.tolist())),
            "distance_px_p5_p50_p95": q(dist),
            "duration_ms_p5_p50_p95": q(dur),
            "length_p5_p50_p95": q(s.L),
            "zscore_outliers": filt.removed,
        }
        if split == "train":
            out["padding"] = padding_report(s.L, batch_size)
    return out


def format_summary(s: dict) -> str:
    lines = [f"Data: {s['data_dir']} (max_seq_len {s['max_seq_len']})"]
    for split, v in s["splits"].items():
        if not v["movements"]:
            lines.append(f"  {split:5s}: empty")
            continue
        lines.append(
            f"  {split:5s}: {v['movements']:6d} movements, {v['users']:3d} users | distance px (5/50/95%) "
            f"{v['distance_px_p5_p50_p95']} | duration ms {v['duration_ms_p5_p50_p95']} | "
            f"points {v['length_p5_p50_p95']} | z>4 outliers {v['zscore_outliers']}"
        )
    if "padding" in s:
        p = s["padding"]
        lines.append(
            f"  padding (train, batch 64): random {p['random']:.1%}, length-aware {p['length_aware']:.1%} "
            f"-> {p['step_reduction']:.1%} fewer padded time steps per epoch"
        )
    return "\n".join(lines)
