"""Where evaluated trajectories come from: a data directory, an exported .npz, or a checkpoint
(its generations, or its autoencoder's reconstructions of the real trajectories)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.directory import is_series, load_meta, load_split
from ..data.embedded import resolve_data_dir
from ..data.sets import TrajectorySet
from ..models.base import has_embedding
from ..models.checkpoint import load_checkpoint
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


def _read_samples(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an exported samples file; every way it can fail, in words."""
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a samples file")
    if not path.is_file():
        raise FileNotFoundError(f"samples file {path} does not exist")
    expected = f"expected the export-samples format: an .npz with {', '.join(SAMPLE_KEYS)}"
    if path.stat().st_size == 0 or not zipfile.is_zipfile(path):
        what = "empty file" if path.stat().st_size == 0 else "not an .npz archive"
        raise ValueError(f"{path} is not a samples file ({what}; {expected})")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in SAMPLE_KEYS if k in z.files}
    except (zipfile.BadZipFile, OSError, EOFError):
        raise ValueError(f"{path} is not a samples file (damaged .npz archive)") from None
    except ValueError:  # numpy refuses object arrays without pickle
        raise ValueError(f"{path} is not a samples file (its arrays hold Python objects, not numbers)") from None
    missing = [k for k in SAMPLE_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing} ({expected})")
    return arrays


def samples_set(path: str | Path, n: int | None = None, seed: int = 0) -> TrajectorySet:
    """An exported samples file (``export-samples`` format), checked key by key."""
    path = Path(path)
    a = _read_samples(path)
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


def checkpoint_set(sampler: TrajectorySampler, real: TrajectorySet, seed: int = 0,
                   real_directions: bool = True) -> TrajectorySet:
    """One generated trajectory per real one, for the real one's condition (distance); a directed model
    (``sampler.directed``) with ``real_directions`` goes to the real one's end point, as the peers
    (benchmarks/peers.py) are driven."""
    C = np.asarray(real.C, np.float32)
    if sampler.directed and real_directions and real.paths is not None:
        ends = np.stack([p[-1, 1:] for p in real.paths]).astype(np.float64)  # (n, 2) px from the start
        return sampler.generate(len(real), seed=seed, conditions=C, targets=ends)
    return sampler.generate(len(real), seed=seed, conditions=C)


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
    # reconstructions only: the copies of the real movements as decoded (same lengths, in order), for the
    # paired errors; ``fake`` holds them as scored (rendered onto the event clock where the sampler renders)
    copies: TrajectorySet | None = None


def evaluation_inputs(data_dir: str | Path, split: str = "test", n: int | None = 2000, seed: int = 0,
                      checkpoint: str | Path | None = None, samples: str | Path | None = None,
                      real_directions: bool = True, render: bool = True, candidates: int | None = None
                      ) -> EvaluationInputs:
    """The sets of one evaluation: a checkpoint's generations or a samples file, against a data directory
    (``real_directions``: see :func:`checkpoint_set`; ``render``, ``candidates``: see
    :meth:`TrajectorySampler.from_checkpoint`)."""
    if (checkpoint is None) == (samples is None):
        raise ValueError("evaluate either a checkpoint or a samples file")
    real, reference = _real_and_reference(data_dir, split, n, seed)
    if samples is not None:
        return EvaluationInputs(real, samples_set(samples, n, seed), reference, None, f"samples {samples}")
    if is_series(load_meta(resolve_data_dir(data_dir))):  # sensor series: features only, no pixels to render
        model = finished_model(checkpoint)
        return EvaluationInputs(real, series_set(model, real, seed), reference,
                                lambda X, L: model.embed(torch.as_tensor(X), torch.as_tensor(L)).numpy(),
                                str(checkpoint))
    sampler = TrajectorySampler.from_checkpoint(checkpoint, render, candidates)
    return EvaluationInputs(real, checkpoint_set(sampler, real, seed, real_directions), reference,
                            checkpoint_embed(sampler),
                            str(checkpoint))


def finished_model(checkpoint: str | Path) -> torch.nn.Module:
    """The model of a finished checkpoint, in eval mode (the sampler's check, without its pixel scaling)."""
    return TrajectorySampler.check_finished(load_checkpoint(checkpoint), checkpoint, build=True).eval()


def series_set(model: torch.nn.Module, real: TrajectorySet, seed: int = 0) -> TrajectorySet:
    """One generated sequence per real one, for its condition, as features only (labelled sensor series)."""
    C = torch.as_tensor(np.asarray(real.C, np.float32)).reshape(len(real), -1)  # (n, C)
    X, L = model.generate(len(real), C, rng=torch.Generator().manual_seed(seed))
    return TrajectorySet(X.numpy(), L.numpy(), real.C, name="generated")


def activity_accuracy(checkpoint: str | Path, data_dir: str | Path, split: str) -> float | None:
    """The share of a labelled split whose activity the model reads off z (a model with ``classify``);
    None for unlabelled data or a model without an activity classifier."""
    model = finished_model(checkpoint)
    s = load_split(resolve_data_dir(data_dir), split, with_paths=False)
    if s.activity is None or not callable(getattr(model, "classify", None)) or len(s) == 0:
        return None
    pred = model.classify(torch.as_tensor(s.X), torch.as_tensor(s.L)).numpy()
    return float((pred == s.activity).mean())


def _real_and_reference(data_dir: str | Path, split: str, n: int | None, seed: int
                        ) -> tuple[TrajectorySet, TrajectorySet]:
    """The evaluated real set and as many real trajectories of another split (the real-vs-real reference)."""
    data_dir = resolve_data_dir(data_dir)
    real = real_set(data_dir, split, n, seed)
    return real, real_set(data_dir, "train" if split != "train" else "val", len(real), seed + 1)


def reconstruction_inputs(data_dir: str | Path, checkpoint: str | Path, split: str = "test", n: int | None = 2000,
                          seed: int = 0, render: bool = True) -> dict[str, EvaluationInputs]:
    """Per reconstruction path of the checkpoint's autoencoder: its copies of the real trajectories, in order.

    Scored like generations, they are the ceiling of generation through that path: a generator
    decoding through this autoencoder cannot look more real than its copies of real movements.
    ValueError, before any data is read, for a family without an autoencoder.
    """
    sampler = TrajectorySampler.from_checkpoint(checkpoint, render)
    described = sampler.reconstruction_paths  # path → what it runs through; raises without an autoencoder
    real, reference = _real_and_reference(data_dir, split, n, seed)
    embed = checkpoint_embed(sampler)
    rendered = " rendered onto the event clock," if sampler.renders else ""
    return {path: EvaluationInputs(real, sampler.reconstruct(real, path), reference, embed,
                                   f"{checkpoint}'s reconstructions of the real movements through the {path} "
                                   f"path ({what}),{rendered} with their real conditions",
                                   copies=sampler.reconstruct(real, path, render=False))
            for path, what in described.items()}
