"""Checkpoints: atomic writes, safe loads (``weights_only``: no arbitrary code), clear errors."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from ..utils.atomic import write_bytes

CHECKPOINT_FORMAT = "trajsynth-checkpoint"
CHECKPOINT_VERSION = 1


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
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for corrupt files
        raise CheckpointError(f"{path} cannot be read as a trajsynth checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a trajsynth checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    if ckpt.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} was written by a newer trajsynth (checkpoint version {ckpt['version']})")
    return ckpt
