"""trajsynth: conditional synthesis of time-series trajectories (human mouse movements first).

    >>> import trajsynth
    >>> sampler = trajsynth.load("checkpoints/run_20260101_120000/final.pt")
    >>> paths = sampler.sample(5, distance_px=400, seed=0)       # (t_ms, x_px, y_px) from (0, 0, 0)
    >>> path = sampler.path(start=(100, 100), end=(600, 300), seed=0)
"""

from __future__ import annotations

import os

# OpenMP threads that wait for work sleep instead of spinning. With spinning (OpenMP's default), a
# job whose threads share cores with another job collapses: the default model's training step ran
# at 0.1–8.8 it/s on two threads beside one busy process, 17.5–18.4 with passive waiting (one thread:
# 22). Read when torch loads OpenMP, so it only takes effect if trajsynth is imported first (the
# command line always is); an explicit OMP_WAIT_POLICY is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"


def load(path):
    """Load a finished checkpoint for sampling; see :class:`trajsynth.serving.sampler.TrajectorySampler`."""
    from .serving.sampler import load as _load

    return _load(path)


__all__ = ["load", "__version__"]
