"""The model families by name, and the run configuration (family + architecture + training) built from a preset.

Adding a family is one line in ``FAMILIES``: its package defines ``FAMILY`` (a :class:`Family`).
Packages are imported on first use, so a command that needs one family loads only that one.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError, check_key_names, from_dict, to_dict, unknown_keys_message
from .base import Family

# name → the package that defines FAMILY.
FAMILIES: dict[str, str] = {
    "latent_wgan": "trajsynth.models.latent_wgan",
    "procedural": "trajsynth.models.procedural",
    "ar_mdn": "trajsynth.models.ar_mdn",
    "timegan": "trajsynth.models.timegan",
    "tcn_vae": "trajsynth.models.tcn_vae",
    "latent_diffusion": "trajsynth.models.latent_diffusion",
}
# The default of train, quickstart and quick-test: the family whose movements measure most realistic
# (README, realism table).
DEFAULT_FAMILY = "ar_mdn"
# The default of benchmark and tune: ar_mdn models mouse events only and has no search space; the two-stage
# model takes any multichannel series and has both stages' spaces.
SERIES_FAMILY = "latent_wgan"


def family_names() -> list[str]:
    return list(FAMILIES)


def get_family(name: str) -> Family:
    if not isinstance(name, str) or name not in FAMILIES:
        raise ConfigError(f"unknown model family {name!r}; choose from {', '.join(FAMILIES)}")
    fam = importlib.import_module(FAMILIES[name]).FAMILY
    _check_disjoint(fam)
    return fam


def _check_disjoint(fam: Family) -> None:
    shared = _fields(fam.arch_cls) & _fields(fam.train_cls)
    if shared:  # --set key=value must say which config a key belongs to by its name alone
        raise TypeError(f"family {fam.name}: keys {sorted(shared)} are in both its architecture and training config")


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


@dataclass
class RunConfig:
    """Everything a training run is built from."""

    family: str
    arch: Any  # the family's arch_cls
    train: Any  # the family's train_cls

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "arch": to_dict(self.arch), "train": to_dict(self.train)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        fam = get_family(d["family"])
        return cls(fam.name, from_dict(fam.arch_cls, d["arch"]), from_dict(fam.train_cls, d["train"]))

    def replace(self, values: dict[str, Any]) -> RunConfig:
        """A copy with flat ``key: value`` pairs routed to the architecture or training config."""
        fam = get_family(self.family)
        arch, train = split_keys(fam, values)
        return RunConfig(self.family, from_dict(fam.arch_cls, {**to_dict(self.arch), **arch}),
                         from_dict(fam.train_cls, {**to_dict(self.train), **train}))

    def get(self, key: str) -> Any:
        return getattr(self.arch if hasattr(self.arch, key) else self.train, key)


def split_keys(fam: Family, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Flat or sectioned (``arch:`` / ``train:``) values → (architecture values, training values)."""
    flat, where = dict(values), {}  # where: a sectioned key → "section.key", to name it as it was given
    for section in ("arch", "train"):
        if isinstance(flat.get(section), dict):
            inner = flat.pop(section)
            where.update({k: f"{section}.{k}" for k in inner if isinstance(k, str)})
            flat.update(inner)
    check_key_names(flat)
    arch_keys, train_keys = _fields(fam.arch_cls), _fields(fam.train_cls)
    unknown = sorted(set(flat) - arch_keys - train_keys)
    if unknown:
        msg = unknown_keys_message(unknown, arch_keys | train_keys)
        for key in unknown:
            if key in where:
                msg = msg.replace(repr(key), repr(where[key]), 1)
        raise ConfigError(f"{msg} for family {fam.name}")
    return ({k: v for k, v in flat.items() if k in arch_keys}, {k: v for k, v in flat.items() if k in train_keys})


def run_config(family: str = DEFAULT_FAMILY, preset: str | None = None, **values: Any) -> RunConfig:
    """The family's preset (default: its ``default``) with ``values`` applied on top."""
    fam = get_family(family)
    preset = preset or "default"
    if preset not in fam.presets:
        raise ConfigError(f"unknown preset {preset!r} for family {fam.name}; choose from {sorted(fam.presets)}")
    base = RunConfig(fam.name, fam.arch_cls(), fam.train_cls())
    return base.replace({**fam.presets[preset], **values})
