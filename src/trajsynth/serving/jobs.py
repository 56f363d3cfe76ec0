"""What the server asks of the model, as jobs the micro-batcher can group: paths and samples as JSON-ready dicts.

Unseeded path jobs share one batched call (:meth:`TrajectorySampler.paths`). A seeded path job
runs alone, so that its answer is exactly ``sampler.path(start, end, seed)`` whatever else arrives
at the same moment; a sample job (up to 1,000 movements) is a batch of its own anyway.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from ..data.features import condition_to_distance
from .sampler import TrajectorySampler

DECIMALS = 3  # ms and px: a thousandth is far below what any logger or screen resolves


@dataclass(frozen=True)
class PathJob:
    start: tuple[float, float]
    end: tuple[float, float]
    seed: int | None = None

    @property
    def key(self) -> Hashable | None:
        return "path" if self.seed is None else None


@dataclass(frozen=True)
class SampleJob:
    n: int
    distance_px: float | None = None
    direction_deg: float | None = None
    seed: int | None = None

    key = None  # already a batch


def movement_json(p: np.ndarray, end: tuple[float, float] | None = None) -> dict[str, list[float]]:
    """A path (L, 3) as ``{"t_ms", "x", "y"}`` lists, rounded; ``end`` (as requested) replaces the last point."""
    r = np.round(np.asarray(p, np.float64), DECIMALS)  # (L, 3)
    out = {"t_ms": r[:, 0].tolist(), "x": r[:, 1].tolist(), "y": r[:, 2].tolist()}
    if end is not None:  # exactly the requested end, not its rounding
        out["x"][-1], out["y"][-1] = float(end[0]), float(end[1])
    return out


def run_jobs(sampler: TrajectorySampler, jobs: list[PathJob] | list[SampleJob]) -> list[dict]:
    """The answers to one batch (all path jobs, or one sample job), in order."""
    if all(isinstance(j, PathJob) for j in jobs):
        seed = jobs[0].seed if len(jobs) == 1 else None
        P = sampler.paths([j.start for j in jobs], [j.end for j in jobs], seed=seed)
        return [movement_json(p, j.end) for p, j in zip(P, jobs, strict=True)]
    if len(jobs) == 1 and isinstance(jobs[0], SampleJob):
        return [{"movements": [movement_json(p) for p in sample(sampler, jobs[0])]}]
    raise TypeError(f"a batch holds path jobs or one sample job, got {[type(j).__name__ for j in jobs]}")


def sample(sampler: TrajectorySampler, job: SampleJob) -> list[np.ndarray]:
    """n movements from (0, 0): the model's own directions, or all toward ``direction_deg`` (px frame, y down)."""
    if job.direction_deg is None:
        return sampler.sample(job.n, job.distance_px, job.seed)
    if job.distance_px is None:  # distances drawn like the training data, as sample() would
        rng = np.random.default_rng(job.seed)
        d = condition_to_distance(sampler.conditions_for(job.n, None, rng), sampler.params)
        d = np.clip(d, *sampler.distance_range)  # (n,) float32 round trip may step just outside
    else:
        d = np.full(job.n, job.distance_px)
    a = np.deg2rad(job.direction_deg)
    ends = d[:, None] * np.array([np.cos(a), np.sin(a)])  # (n, 2)
    return sampler.paths(np.zeros_like(ends), ends, seed=job.seed)
