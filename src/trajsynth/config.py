"""Typed configuration helpers: dataclass ↔ dict/YAML, and ``key=value`` overrides.

Every model family's config is a frozen-free dataclass of plain types; this
module turns it into the dict stored in run folders and checkpoints, builds it
back with a clear error on unknown keys or wrong types, and applies the CLI's
``--set key=value`` overrides (values parsed as YAML: ``3``, ``1e-4``, ``[64, 64]``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key that cannot be used."""


def to_dict(cfg: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Check (and gently convert) one value against its field's type annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation)]
        if value is None and type(None) in options:
            return None
        for opt in options:
            if opt is type(None):
                continue
            try:
                return _coerce(name, value, opt)
            except ConfigError:
                continue
        raise ConfigError(f"{name}: {value!r} does not fit {annotation}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        (inner,) = typing.get_args(annotation)[:1] or (Any,)
        return [_coerce(name, v, inner) for v in value]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if annotation in (int, float):
        value = _number_text(value)
    if annotation is int:
        whole = isinstance(value, int) or (isinstance(value, float) and _finite(value) and value == int(value))
        if isinstance(value, bool) or not whole:
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        if not -(2**63) <= int(value) < 2**63:
            raise ConfigError(f"{name}: the value does not fit in a 64-bit integer")
        return int(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise ConfigError(f"{name}: expected a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return value
    return value


def _number_text(value: Any) -> Any:
    """A number written as text that YAML 1.1 reads as a string (``4e-3``, ``1e4``: no dot) → the float;
    anything else unchanged, for the caller to accept or reject."""
    if not isinstance(value, str):
        return value
    try:
        return float(value.strip())
    except ValueError:
        return value


def at_least(cfg: Any, low: int, names: tuple[str, ...]) -> None:
    """ConfigError naming the first of the fields ``names`` of ``cfg`` below ``low`` (or NaN)."""
    for name in names:
        if not getattr(cfg, name) >= low:
            raise ConfigError(f"{name} must be >= {low}, got {getattr(cfg, name)}")


def _finite(value: int | float) -> bool:
    """A number that is a finite float (a huge int is not: float() overflows)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def from_dict(cls: type[T], data: dict[str, Any], strict: bool = True) -> T:
    """Build a config dataclass; unknown keys are an error when ``strict``."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of {cls.__name__} keys, got {type(data).__name__}")
    check_key_names(data)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown and strict:
        raise ConfigError(unknown_keys_message(unknown, names))
    values = {k: _coerce(k, v, hints[k]) for k, v in data.items() if k in names}
    return cls(**values)


def check_key_names(data: dict) -> None:
    """Config keys are names (YAML also allows numbers, null or lists as keys)."""
    odd = [k for k in data if not isinstance(k, str)]
    if odd:
        raise ConfigError(f"config keys must be names, got {', '.join(repr(k) for k in odd[:3])}")


def unknown_keys_message(unknown: list[str], known) -> str:
    """``unknown config key 'lr_gen' (did you mean 'lr_generator'?)`` — the closest names, not all of them."""
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
        parts.append(f"{key!r}" + (f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""))
    return f"unknown config key{'s' if len(unknown) > 1 else ''} " + ", ".join(parts)


@dataclasses.dataclass
class TrainConfig:
    """Settings every family's training shares; a family's training config subclasses it."""

    batch_size: int = 64
    grad_clip: float = 1.0
    lr_schedule: str = "none"  # none | cosine | step | plateau
    log_interval: int = 100
    eval_interval: int = 1000
    save_interval: int = 5000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        at_least(self, 1, ("batch_size", "log_interval", "eval_interval", "save_interval"))
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in [0, 2**32), got {self.seed}")


LR_SCHEDULES = ("none", "cosine", "step", "plateau")


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``["lr_generator=2e-4", "generator_hidden_dims=[128,128]"]`` → dict."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {pair!r} is not of the form key=value")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except (yaml.YAMLError, ValueError) as e:  # ValueError: an integer of more digits than Python converts
            raise ConfigError(f"override {pair!r}: value is not valid YAML ({_one_line(e)})") from None
    return out


def _one_line(e: BaseException) -> str:
    """YAML's errors point at the spot over several lines: one line for a message."""
    return " ".join(str(e).split())


def replace(cfg: T, overrides: dict[str, Any]) -> T:
    """A copy of ``cfg`` with overrides applied and checked."""
    merged = {**to_dict(cfg), **overrides}
    return from_dict(type(cfg), merged)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except (yaml.YAMLError, ValueError) as e:
        raise ConfigError(f"{path}: not valid YAML ({_one_line(e)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def dump_yaml(cfg: Any) -> str:
    """A config dataclass, or a dict of them / of plain values, as YAML."""
    data = cfg if isinstance(cfg, dict) else to_dict(cfg)
    return yaml.safe_dump(data, sort_keys=False)
