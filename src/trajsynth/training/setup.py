"""From what a user asks for (family, preset, YAML file, ``key=value`` overrides) to a run configuration.

Used by the command line, the search and the Python API alike, so every entry point resolves
configuration the same way: the family's preset, then the file, then the overrides; the sequence
length always follows the data.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..config import ConfigError, from_dict, load_yaml, to_dict
from ..models.checkpoint import CheckpointError, checkpoint_family, load_checkpoint, phases_done
from ..models.registry import DEFAULT_FAMILY, RunConfig, get_family, run_config, split_keys


def user_values(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values a user set explicitly: the YAML file's, then the ``--set`` overrides."""
    values = load_yaml(config_file) if config_file else {}
    return {**values, **(overrides or {})}


def _with_length(run: RunConfig, values: dict[str, Any], max_seq_len: int | None) -> dict[str, Any]:
    if max_seq_len is None or not hasattr(run.arch, "max_seq_len"):
        return values
    if "max_seq_len" in values and values["max_seq_len"] != max_seq_len:
        raise ConfigError(f"max_seq_len={values['max_seq_len']} does not match the data ({max_seq_len})")
    return {**values, "max_seq_len": max_seq_len}


def build_run_config(family: str | None = None, preset: str | None = None, values: dict[str, Any] | None = None,
                     max_seq_len: int | None = None) -> RunConfig:
    """The family's preset with the user's values; max_seq_len follows the data unless set."""
    run = run_config(family or DEFAULT_FAMILY, preset)
    return check_buildable(run.replace(_with_length(run, dict(values or {}), max_seq_len)))


def check_buildable(run: RunConfig) -> RunConfig:
    """``run``, once its model builds on the meta device (no memory): sizes torch cannot make are a ConfigError."""
    try:
        with torch.device("meta"):
            get_family(run.family).model_cls(run.arch)
    except (RuntimeError, ValueError, TypeError, OverflowError) as e:
        raise ConfigError(f"the {run.family} architecture cannot be built ({' '.join(str(e).split())[:200]})") \
            from None
    return run


def continuing_config(ckpt: dict, path: str | Path, preset: str | None = None, values: dict[str, Any] | None = None,
                      max_seq_len: int | None = None) -> RunConfig:
    """A run that continues from a checkpoint's finished phases (e.g. stage 2 on a stage-1 autoencoder).

    The architecture is the checkpoint's, except keys the user set explicitly (later phases'
    parts may be shaped otherwise); training settings come from the preset and the user's values.
    """
    fam = checkpoint_family(ckpt, path)
    if not phases_done(ckpt):
        raise CheckpointError(f"{path} has no finished phase to continue from (phases of {fam.name}: "
                              f"{', '.join(fam.phase_names)})")
    values = dict(values or {})
    base = build_run_config(fam.name, preset, {k: v for k, v in values.items() if k in _train_keys(fam)})
    arch_values, _ = split_keys(fam, values)
    run = check_buildable(RunConfig(fam.name, from_dict(fam.arch_cls, ckpt["arch"]), base.train).replace(arch_values))
    stored = getattr(run.arch, "max_seq_len", None)
    if max_seq_len is not None and stored is not None and stored != max_seq_len:
        raise ConfigError(f"{path} was trained on sequences of up to {stored} steps, the data has {max_seq_len}")
    return run


def _train_keys(fam) -> set[str]:
    return {f.name for f in dataclasses.fields(fam.train_cls)}


def load_continuable(path: str | Path, family: str | None = None) -> dict:
    """A checkpoint with at least one finished phase, of ``family`` when one is named."""
    ckpt = load_checkpoint(path)
    fam = checkpoint_family(ckpt, path)
    if family is not None and fam.name != get_family(family).name:
        raise CheckpointError(f"{path} holds a {fam.name!r} model, not {family!r}")
    if not phases_done(ckpt):
        raise CheckpointError(f"{path} is not a finished-phase checkpoint (use a run's <phase>_final.pt or a "
                              "tuning trial's best_model.pt)")
    return ckpt


def check_until(family: str, until: str | None) -> None:
    """``until`` names one of the family's phases (or is None): checked before a run folder is made."""
    phases = get_family(family).phase_names
    if until is not None and until not in phases:
        raise ConfigError(f"unknown phase {until!r} for --until; {family} has {', '.join(phases)}")


def describe_config(run: RunConfig) -> dict[str, Any]:
    return {"family": run.family, **to_dict(run.arch), **to_dict(run.train)}
