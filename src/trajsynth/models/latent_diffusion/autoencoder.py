"""A latent diffusion run that starts from a finished two-stage autoencoder (``train --autoencoder CKPT``)."""

from __future__ import annotations

from pathlib import Path

from ...config import ConfigError, to_dict
from ..registry import RunConfig
from .model import AUTOENCODER_FAMILY

SIZES = ("feature_dim", "condition_dim", "max_seq_len")


def start_from_autoencoder(ckpt: dict, path: str | Path, run: RunConfig) -> tuple[RunConfig, dict]:
    """(``run`` with the checkpoint's autoencoder architecture, a checkpoint of this family whose
    ``autoencoder`` phase is done and holds those weights), for ``Trainer.continue_from``.

    The checkpoint (loaded safely, its family's version checked) must be a latent_wgan model whose stage 1 is
    finished, of the data's sizes; anything else is a ConfigError of one line.
    """
    family = ckpt.get("family")
    if family != AUTOENCODER_FAMILY:
        raise ConfigError(f"{path} holds a {family} model; --autoencoder needs a {AUTOENCODER_FAMILY} "
                          "checkpoint with a finished stage 1 (e.g. its stage1_final.pt or final.pt)")
    done = ckpt.get("trainer_state", {}).get("done", [])
    if not isinstance(done, list) or "stage1" not in done:
        raise ConfigError(f"{path}: its autoencoder is unfinished (phases done: {done or 'none'}); use a "
                          "stage1_final.pt or final.pt")
    arch = dict(ckpt["arch"])
    for key in SIZES:
        if arch.get(key) != getattr(run.arch, key):
            raise ConfigError(f"{path}: the autoencoder has {key} {arch.get(key)}, this run's data "
                              f"{getattr(run.arch, key)}")
    run = run.replace({"autoencoder": arch})
    state = {f"autoencoder.{k}": v for k, v in ckpt["model_state"].items()}
    started = {"family": run.family, "arch": to_dict(run.arch), "model_state": state,
               "trainer_state": {"done": ["autoencoder"], "complete": False}}
    return run, started
