"""Search spaces of the hyperparameter search: one ``ParamSpec`` per config key, per phase of a family.

Parameter names are the family's config keys (the same names ``--set`` takes), so a trial's
parameters are exactly the config overrides it trains with. Each family declares its default
spaces (``Family.search_space``); hidden-layer lists are searched as strings such as
``"256x256x256"`` because Optuna's categorical choices must be scalars; :func:`decode` turns them
back into lists.

A YAML file may replace or remove entries, by phase (``null`` removes a parameter, which then
keeps its value from the preset and ``--set``)::

    stage1:
      latent_dim: {type: categorical, choices: [32, 64]}
      lr_autoencoder: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    stage2:
      n_critic: {type: int, low: 1, high: 5}
      use_feature_matching: null
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError, load_yaml, to_dict
from ..models.registry import RunConfig, get_family, run_config

KINDS = ("categorical", "int", "float")
FIXED = ("seed", "arch_version", "max_seq_len", "feature_dim", "condition_dim")  # never searched


@dataclass(frozen=True)
class ParamSpec:
    kind: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False

    def suggest(self, trial, name: str) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
                if v is not None and not (k == "log" and not v)}


def encode(value: Any) -> Any:
    """Config value → search value (lists of ints become ``"256x256"``)."""
    return "x".join(str(v) for v in value) if isinstance(value, list) else value


def decode(params: dict[str, Any]) -> dict[str, Any]:
    """Trial parameters → config overrides (``"256x256"`` → [256, 256])."""
    return {k: [int(v) for v in x.split("x")] if isinstance(x, str) and _is_dims(x) else x for k, x in params.items()}


def _is_dims(s: str) -> bool:
    return all(part.isdigit() for part in s.split("x"))


def parse_spec(phase: str, name: str, raw: Any, where: str) -> ParamSpec:
    """One entry of a search-space file → ParamSpec, with the file and parameter named in every error."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {phase}.{name} must be a mapping such as {{type: categorical, choices: "
                          f"[...]}}, got {raw!r}")
    kind, extra = raw.get("type"), sorted(set(raw) - {"type", "choices", "low", "high", "log"})
    if kind not in KINDS or extra:
        raise ConfigError(f"{where}: {phase}.{name}: type must be one of {KINDS}"
                          + (f"; unknown field(s) {extra}" if extra else f", got {kind!r}"))
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: {phase}.{name}: a categorical parameter needs a non-empty choices list")
        return ParamSpec(kind, tuple(encode(c) for c in choices))
    try:
        low, high = float(raw["low"]), float(raw["high"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{where}: {phase}.{name}: an {kind} parameter needs numeric low and high") from None
    if not low <= high or (raw.get("log") and low <= 0):
        raise ConfigError(f"{where}: {phase}.{name}: need 0 < low <= high for log, low <= high otherwise")
    return ParamSpec(kind, low=low, high=high, log=bool(raw.get("log", False)))


def allowed_names(family: str, phase: str) -> list[str]:
    """Searchable keys of a phase: every config key but the fixed ones, and, after the first phase, none
    that shapes an earlier phase's weights (those come from the checkpoint the phase starts from)."""
    fam = get_family(family)
    names = set(to_dict(fam.arch_cls())) | set(to_dict(fam.train_cls()))
    earlier = fam.phase_names[: fam.phase_names.index(phase)] if phase in fam.phase_names else ()
    frozen = {k for p in earlier for k in fam.search_space.get(p, {})}  # an earlier phase's own space
    return sorted(n for n in names - set(FIXED) if n not in frozen)


def default_space(family: str, phase: str) -> dict[str, ParamSpec]:
    return {k: parse_spec(phase, k, v, f"{family} default space")
            for k, v in get_family(family).search_space.get(phase, {}).items()}


def load_space(family: str, phase: str, path: str | None) -> dict[str, ParamSpec]:
    """The family's default space of ``phase`` with the entries of a YAML file (if any) applied."""
    fam = get_family(family)
    space = default_space(family, phase)
    if path is None:
        return space
    data = load_yaml(path)
    unknown_sections = sorted(set(data) - set(fam.phase_names))
    if unknown_sections:
        raise ConfigError(f"{path}: unknown section(s) {unknown_sections}; {fam.name} has phases "
                          f"{', '.join(fam.phase_names)}")
    section = data.get(phase) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: {phase} must be a mapping of parameter → range")
    known = allowed_names(family, phase)
    for name, raw in section.items():
        if name not in known:
            raise ConfigError(f"{path}: unknown {phase} parameter {name!r}; searchable: {', '.join(known)}")
        if raw is None:
            space.pop(name, None)
        else:
            space[name] = parse_spec(phase, name, raw, str(path))
    return space


def baselines(family: str, phase: str) -> list[dict[str, Any]]:
    """Known-good starting points tried before the sampler's own suggestions: the default and fast presets."""
    fam = get_family(family)
    space = fam.search_space.get(phase, {})
    out = []
    for preset in ("default", "fast"):
        if preset in fam.presets:
            run = run_config(family, preset)
            out.append({k: encode(run.get(k)) for k in space})
    return out


def check_space(space: dict[str, ParamSpec], base: RunConfig, where: str) -> None:
    """Every categorical choice and both ends of every range must give a valid config (before any trial)."""
    for name, spec in space.items():
        values = spec.choices if spec.kind == "categorical" else (spec.low, spec.high)
        for v in values:
            value = int(v) if spec.kind == "int" else v
            try:
                base.replace(decode({name: value}))
            except (ConfigError, ValueError) as e:
                raise ConfigError(f"{where}: {name}={v!r} is not a valid setting: {e}") from None


def space_to_dict(space: dict[str, ParamSpec]) -> dict[str, dict]:
    return {k: v.to_dict() for k, v in sorted(space.items())}
