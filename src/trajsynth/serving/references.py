"""Real movements to show beside generated ones: one of similar distance, turned toward the same end point.

The page draws a generated movement; a person judges it best next to a real one of about the
same length. The real movements come from a processed data directory's held-out split (``test``;
``val`` then ``train`` when it is empty), as recorded: only rotated about their start so that they
point at the requested end (never scaled, so their own distance and timing stay true).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.directory import load_split

SPLITS = ("test", "val", "train")


class RealMovements:
    """The movements (with paths) of one split of a data directory, found by distance."""

    def __init__(self, data_dir: str | Path, nearest: int = 10):
        self.data_dir, self.nearest = Path(data_dir), nearest
        self.split, s = _first_split_with_paths(self.data_dir)
        self.paths = [np.asarray(s.path(i), np.float64) for i in range(len(s))]  # each (L, 3) from (0, 0, 0)
        self.users = [str(u) for u in s.user]
        self.distance = np.array([np.hypot(*p[-1, 1:]) for p in self.paths])  # (N,) px
        self.order = np.argsort(self.distance)

    def __len__(self) -> int:
        return len(self.paths)

    def pick(self, distance_px: float, rng: np.random.Generator) -> int:
        """One of the ``nearest`` movements closest in distance, drawn at random."""
        pos = int(np.searchsorted(self.distance[self.order], distance_px))
        lo = max(0, min(pos - self.nearest // 2, len(self) - self.nearest))
        return int(rng.choice(self.order[lo : lo + self.nearest]))

    def between(self, start, end, seed: int | None = None) -> tuple[np.ndarray, int]:
        """A real path (L, 3) from ``start`` turned toward ``end``, and its index."""
        start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
        target = end - start
        i = self.pick(float(np.hypot(*target)), np.random.default_rng(seed))
        p = self.paths[i]
        g = p[-1, 1:]
        turn = np.arctan2(target[1], target[0]) - (np.arctan2(g[1], g[0]) if np.any(g) else 0.0)
        R = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        return np.column_stack([p[:, 0], p[:, 1:] @ R.T + start]), i


def _first_split_with_paths(data_dir: Path):
    for split in SPLITS:
        s = load_split(data_dir, split)
        if len(s) and s.offsets[-1] > 0:
            return split, s
    raise ValueError(f"{data_dir} holds no movement paths (paths_*.npz) to show beside generated ones")
