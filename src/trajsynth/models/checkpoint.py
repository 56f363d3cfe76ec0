"""Checkpoints: atomic writes, safe loads (``weights_only``: no arbitrary code), clear errors, models rebuilt.

A checkpoint is self-describing: ``family`` and ``family_version``, the architecture config
(``arch``), the training config (``train``), the weights (``model_state``), the trainer's progress
(``trainer_state``: phase, iteration, phases done, ``complete``), the state of the family's
optimisers (``training``), random state, and what the sampler needs of the data (``data``).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import ConfigError, from_dict
from ..utils.atomic import write_bytes
from .base import Family
from .registry import get_family

CHECKPOINT_FORMAT = "trajsynth-checkpoint"
CHECKPOINT_VERSION = 2


class CheckpointError(ValueError):
    """A checkpoint path or file that cannot be used."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) under a temp name, then rename."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **payload}, buf)
    write_bytes(path, buf.getvalue())
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing pickled code; explain every failure."""
    path = Path(path)
    if path.is_dir():
        finals = sorted(p.name for p in path.glob("*.pt"))
        hint = f" (it holds {', '.join(finals[:6])})" if finals else ""
        raise CheckpointError(f"{path} is a directory, not a checkpoint file{hint}; pass e.g. {path / 'final.pt'}")
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    ckpt = _torch_load(path, map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a trajsynth checkpoint (a PyTorch file without the "
                              f"'{CHECKPOINT_FORMAT}' marker)")
    if ckpt.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} was written by a newer trajsynth (checkpoint version {ckpt['version']})")
    return upgrade(ckpt)


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's archive format
LEGACY_MAGIC = b"\x80\x02\x8a\x0a"  # torch.save before PyTorch 1.6: a pickle with a magic number


def _torch_load(path: Path, map_location) -> Any:
    """torch.load with ``weights_only``; a failure says what the file is, not what torch tripped over."""
    with path.open("rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if not head:
        raise CheckpointError(f"{path} is not a trajsynth checkpoint (empty file)")
    if not (head.startswith(ZIP_MAGIC) or head.startswith(LEGACY_MAGIC)):
        raise CheckpointError(f"{path} is not a trajsynth checkpoint (not a PyTorch file)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        why = "a PyTorch file holding Python objects, which the safe loader refuses to run"
    except Exception:  # noqa: BLE001 - torch raises many types for damaged files
        why = "truncated PyTorch file" if head.startswith(ZIP_MAGIC) and not zipfile.is_zipfile(path) \
            else "damaged PyTorch file"
    raise CheckpointError(f"{path} is not a trajsynth checkpoint ({why})")


def newest_checkpoint(folder: str | Path) -> Path:
    """The readable checkpoint of a run folder that got furthest: by phase, then iteration, then completion.

    The order comes from each file's trainer state, not from names or times; unreadable files are passed over.
    """
    folder = Path(folder)
    found = []
    for path in sorted(folder.glob("*.pt")):
        try:
            st = load_checkpoint(path).get("trainer_state", {})
        except CheckpointError:
            continue
        found.append(((st.get("phase", 0), st.get("iteration", 0), bool(st.get("complete"))), path))
    if not found:
        raise CheckpointError(f"{folder} holds no readable checkpoint (*.pt)")
    return max(found)[1]


# ----- models from checkpoints ---------------------------------------------------------------
def checkpoint_family(ckpt: dict, path: str | Path) -> Family:
    """The family a checkpoint holds, checked against this build's version of it."""
    ckpt = upgrade(ckpt)
    fam = get_family(ckpt.get("family", "?"))
    version = ckpt.get("family_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path}: family_version {version!r} is not a version number")
    if version > fam.version:
        raise CheckpointError(f"{path} holds a {fam.name} model of version {ckpt['family_version']}, newer than "
                              f"this build's {fam.version}; upgrade trajsynth")
    return fam


def build_model(ckpt: dict, path: str | Path = "<checkpoint>") -> nn.Module:
    """The checkpoint's model, rebuilt from its stored architecture, with its weights, in eval mode."""
    ckpt = upgrade(ckpt)
    fam = checkpoint_family(ckpt, path)
    try:
        arch = from_dict(fam.arch_cls, ckpt["arch"])
    except (ConfigError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: stored architecture cannot be used ({e})") from None
    state = ckpt.get("model_state")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds no model weights (model_state is {type(state).__name__})")
    _check_weight_shapes(fam, arch, state, path)
    model = fam.model_cls(arch)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match the stored architecture ({_one_line(e)})") from None
    return model.eval()


def _one_line(e: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (torch lists problems one per line), cut to ``limit`` characters."""
    return " ".join(str(e).split())[:limit]


def _check_weight_shapes(fam: Family, arch: Any, state: dict, path: str | Path) -> None:
    """The stored weights are exactly the ones ``arch`` makes, shape for shape.

    The model is built on the meta device (no memory), so a damaged architecture with huge sizes is an
    error here instead of an allocation of its weights.
    """
    try:
        with torch.device("meta"):
            want = {k: tuple(v.shape) for k, v in fam.model_cls(arch).state_dict().items()}
    except (RuntimeError, ValueError, TypeError, OverflowError) as e:
        raise CheckpointError(f"{path}: stored architecture cannot be built ({_one_line(e)})") from None
    have = {k: tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__ for k, v in state.items()}
    for problem, keys in (("lacks weights", sorted(set(want) - set(have))),
                          ("has unknown weights", sorted(set(have) - set(want)))):
        if keys:
            raise CheckpointError(f"{path}: {problem} {keys[:4]} of its stored architecture")
    wrong = [k for k in want if want[k] != have[k]]
    if wrong:
        k = wrong[0]
        raise CheckpointError(f"{path}: weight {k} is {have[k]} but the stored architecture needs {want[k]}"
                              + (f" ({len(wrong) - 1} more mismatches)" if len(wrong) > 1 else ""))


def load_model(path: str | Path) -> tuple[nn.Module, dict]:
    """(model, checkpoint dict) of a checkpoint file."""
    ckpt = upgrade(load_checkpoint(path))
    return build_model(ckpt, path), ckpt


def _trainer_state(ckpt: dict) -> dict:
    st = upgrade(ckpt).get("trainer_state", {})
    return st if isinstance(st, dict) else {}


def is_complete(ckpt: dict) -> bool:
    """Are all the family's phases done (a model ready to sample)? False for a damaged progress record."""
    return _trainer_state(ckpt).get("complete", False) is True


def phases_done(ckpt: dict) -> list[str]:
    """The names of the finished phases; none for a damaged progress record."""
    done = _trainer_state(ckpt).get("done", [])
    return list(done) if isinstance(done, list) and all(isinstance(p, str) for p in done) else []


def upgrade(ckpt: dict) -> dict:
    """A version-1 checkpoint (latent_wgan only, one flat config) in the version-2 layout."""
    if ckpt.get("version", 0) >= 2 or "family" in ckpt:
        return ckpt
    from .latent_wgan.legacy import upgrade_v1  # the only family that wrote version 1

    return upgrade_v1(ckpt)
