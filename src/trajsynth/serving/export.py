"""The sample export format (``export-samples``) and a one-line description of a batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.sets import TrajectorySet
from ..utils.atomic import save_npz


def check_samples_path(path: str | Path) -> Path:
    """A new .npz path whose folder exists or can be made: checked before the work that fills it."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"output must end in .npz, got {path}")
    if path.exists():
        raise FileExistsError(f"{path} already exists; choose another output file")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise FileExistsError(f"cannot write {path}: {blocking} is a file, not a folder")
    return path


def write_samples(path: str | Path, g: TrajectorySet) -> Path:
    """X (N, T, 8), L, C, distance_px, paths_points (P, 3) + paths_offsets (N+1,); never overwrites."""
    path = check_samples_path(path)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in g.paths])]).astype(np.int64)
    save_npz(path, X=g.X, L=g.L, C=g.C, distance_px=g.distance_px.astype(np.float32),
             paths_points=np.concatenate(g.paths).astype(np.float32), paths_offsets=offsets)
    return path


def describe(g: TrajectorySet) -> str:
    end = np.array([np.hypot(*p[-1, 1:]) for p in g.paths])
    rel = np.abs(end - g.distance_px) / g.distance_px
    dur = np.array([p[-1, 0] for p in g.paths])
    return (f"{len(g.L)} trajectories | points p50 {np.median(g.L):.0f} (range {g.L.min()}-{g.L.max()}) | "
            f"duration ms p50 {np.median(dur):.0f} | end-distance error p50 {np.median(rel):.1%}")
