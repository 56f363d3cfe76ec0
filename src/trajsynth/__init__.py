"""trajsynth: conditional synthesis of time-series trajectories (human mouse movements first).

    >>> import trajsynth
    >>> sampler = trajsynth.load("checkpoints/run_20260101_120000/final.pt")
    >>> paths = sampler.sample(5, distance_px=400, seed=0)       # (t_ms, x_px, y_px) from (0, 0, 0)
    >>> path = sampler.path(start=(100, 100), end=(600, 300), seed=0)
"""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, render: bool = True, candidates: int | None = None):
    """Load a finished checkpoint for sampling; see :class:`trajsynth.serving.sampler.TrajectorySampler`.

    ``candidates``: for an ``ar_mdn`` model trained with ``critic=true``, how many movements to draw per
    kept one (1: the critic is not used); default: as trained."""
    from .serving.sampler import load as _load

    return _load(path, render, candidates)


__all__ = ["load", "__version__"]
