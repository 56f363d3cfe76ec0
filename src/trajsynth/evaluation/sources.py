"""Where evaluated trajectories come from: a data directory, an exported .npz, or a checkpoint."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.sets import TrajectorySet
from ..models.base import has_embedding
from ..serving.sampler import TrajectorySampler
from .suite import Embed

SAMPLE_KEYS = ("X", "L", "C", "distance_px", "paths_points", "paths_offsets")


def real_set(data_dir: str | Path, split: str, n: int | None = None, seed: int = 0) -> TrajectorySet:
    """Up to n trajectories of one split, drawn without replacement with ``seed``."""
    return TrajectorySet.from_split(data_dir, split, n, seed)


def _pick(N: int, n: int | None, seed: int) -> np.ndarray:
    if n is None or n >= N:
        return np.arange(N)
    return np.sort(np.random.default_rng(seed).choice(N, n, replace=False))


def samples_set(path: str | Path, n: int | None = None, seed: int = 0) -> TrajectorySet:
    """An exported samples file (``export-samples`` format), checked key by key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"samples file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in SAMPLE_KEYS if k not in z.files]
            if missing:
                raise ValueError(f"{path}: missing arrays {missing} (expected the export-samples format: "
                                 f"{', '.join(SAMPLE_KEYS)})")
            a = {k: z[k] for k in SAMPLE_KEYS}
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    N = len(a["L"])
    off = a["paths_offsets"].astype(np.int64)
    if a["X"].ndim != 3 or off.shape != (N + 1,) or off[0] != 0 or off[-1] != len(a["paths_points"]) \
            or np.any(np.diff(off) < 1):
        raise ValueError(f"{path}: inconsistent shapes (X {a['X'].shape}, L {a['L'].shape}, "
                         f"paths_offsets {off.shape}, paths_points {a['paths_points'].shape})")
    paths = [a["paths_points"][off[i] : off[i + 1]].astype(np.float64) for i in range(N)]
    try:
        full = TrajectorySet(a["X"], a["L"], a["C"].reshape(-1), paths, a["distance_px"].reshape(-1))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return full.subset(_pick(N, n, seed))


def checkpoint_set(sampler: TrajectorySampler, real: TrajectorySet, seed: int = 0) -> TrajectorySet:
    """One generated trajectory per real one, for the real one's condition (distance)."""
    return sampler.generate(len(real), seed=seed, conditions=np.asarray(real.C, np.float32))


def checkpoint_embed(sampler: TrajectorySampler) -> Embed | None:
    """The model's own latent vectors (``embed``), for the latent metrics; None for a family without one."""
    model = sampler.model.eval()
    if not has_embedding(model):
        return None
    return lambda X, L: model.embed(torch.as_tensor(X), torch.as_tensor(L)).numpy()


@dataclass
class EvaluationInputs:
    real: TrajectorySet  # the split evaluated against
    fake: TrajectorySet  # generated (for the real set's conditions) or read from a samples file
    reference: TrajectorySet  # real trajectories of another split: the real-vs-real values
    embed: Embed | None  # the model's own latent space, if it has one
    source: str  # what was evaluated, for reports


def evaluation_inputs(data_dir: str | Path, split: str = "test", n: int | None = 2000, seed: int = 0,
                      checkpoint: str | Path | None = None, samples: str | Path | None = None) -> EvaluationInputs:
    """The sets of one evaluation: a checkpoint's generations or a samples file, against a data directory."""
    if (checkpoint is None) == (samples is None):
        raise ValueError("evaluate either a checkpoint or a samples file")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist")
    real = real_set(data_dir, split, n, seed)
    reference = real_set(data_dir, "train" if split != "train" else "val", len(real), seed + 1)
    if samples is not None:
        return EvaluationInputs(real, samples_set(samples, n, seed), reference, None, f"samples {samples}")
    sampler = TrajectorySampler.from_checkpoint(checkpoint)
    return EvaluationInputs(real, checkpoint_set(sampler, real, seed), reference, checkpoint_embed(sampler),
                            str(checkpoint))
