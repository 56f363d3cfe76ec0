"""Rebuild the embedded SapiMouse sample shipped in src/trajsynth/data/assets/.

Usage: python scripts/make_embedded_sample.py SAPIMOUSE_DIR

Takes every user whose number is a multiple of 5 (24 of the 120 users),
segments their sessions with the default rules, and stores the movements'
raw paths (integer ms from each start, integer pixels) in a compressed npz.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from trajsynth.data.embedded import ASSET
from trajsynth.data.preprocess import PreprocessConfig, process_file
from trajsynth.data.raw import find_logs
from trajsynth.utils.atomic import save_npz


def main(raw_dir: str) -> None:
    raw = Path(raw_dir)
    cfg = PreprocessConfig()
    files = [f for f in find_logs(raw) if int(f.parent.name.removeprefix("user")) % 5 == 0]
    segs = [s for f in files for s in process_file(f, raw, cfg).segments if len(s.points) <= cfg.max_seq_len]
    pts = [s.points for s in segs]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in pts])]).astype(np.int64)
    t = np.concatenate([p[:, 0] - p[0, 0] for p in pts]).astype(np.int32)
    xy = np.concatenate([p[:, 1:] for p in pts]).astype(np.int16)
    out = Path(__file__).resolve().parents[1] / "src/trajsynth/data/assets" / ASSET
    save_npz(out, t_ms=t, xy_px=xy, offsets=offsets,
             user=np.array([s.user for s in segs]), session=np.array([s.session for s in segs]),
             action=np.array([s.action for s in segs]))
    print(f"{len(segs)} movements of {len({s.user for s in segs})} users -> {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main(sys.argv[1])
