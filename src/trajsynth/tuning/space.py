"""Search spaces of the hyperparameter search: one ``ParamSpec`` per config key, per stage.

Parameter names are the keys of ``LatentWGANConfig`` (the same names ``--set`` takes), so a
trial's parameters are exactly the config overrides it trains with. Hidden-layer lists are
searched as strings such as ``"256x256x256"`` because Optuna's categorical choices must be
scalars; :func:`decode` turns them back into lists.

A YAML file may replace or remove entries (``null`` removes a parameter, which then keeps its
value from the preset and ``--set``)::

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

from ..config import ConfigError, load_yaml, replace
from ..models.latent_wgan.config import ARCH_FIELDS, LatentWGANConfig, get_config

KINDS = ("categorical", "int", "float")
LIST_FIELDS = ("generator_hidden_dims", "critic_hidden_dims")
# Stage 2 trains on a frozen autoencoder: its architecture and its optimiser are stage 1's business.
STAGE1_ONLY = (*ARCH_FIELDS, "lr_autoencoder", "lambda_recon", "lambda_latent", "lambda_length", "lambda_condition",
               "stage1_iterations", "stage1_threshold", "stage1_min_iterations")


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


def cat(*choices) -> ParamSpec:
    return ParamSpec("categorical", tuple(choices))


def log_uniform(low: float, high: float) -> ParamSpec:
    return ParamSpec("float", low=low, high=high, log=True)


HIDDEN_CHOICES = ("128x128", "256x256", "256x256x256", "512x512", "512x512x512")

DEFAULT_SPACES: dict[int, dict[str, ParamSpec]] = {
    1: {
        "latent_dim": cat(32, 48, 64, 96),
        "summary_dim": cat(64, 96, 128, 192),
        "pool_type": cat("attention", "mean", "last", "hybrid"),
        "expand_type": cat("lstm", "mlp", "repeat", "parallel"),
        "lr_autoencoder": log_uniform(1e-5, 1e-2),
        "lr_schedule": cat("none", "cosine", "step", "plateau"),
        "lambda_recon": ParamSpec("float", low=0.5, high=2.0),
        "lambda_latent": ParamSpec("float", low=0.1, high=1.0),
    },
    2: {
        "noise_dim": cat(64, 128, 192, 256),
        "generator_hidden_dims": cat(*HIDDEN_CHOICES),
        "critic_hidden_dims": cat(*HIDDEN_CHOICES),
        "lr_generator": log_uniform(1e-5, 1e-3),
        "lr_discriminator": log_uniform(1e-5, 1e-3),
        "n_critic": ParamSpec("int", low=1, high=10),
        "lambda_gp": log_uniform(1.0, 50.0),
        "use_feature_matching": cat(True, False),
    },
}


def encode(name: str, value: Any) -> Any:
    """Config value → search value (hidden-layer lists become ``"256x256"``)."""
    return "x".join(str(v) for v in value) if name in LIST_FIELDS else value


def _baseline(preset: str, stage: int) -> dict[str, Any]:
    cfg = get_config(preset)
    return {k: encode(k, getattr(cfg, k)) for k in DEFAULT_SPACES[stage]}


# Known-good starting points, tried before the sampler's own suggestions: the default and fast presets.
BASELINES: dict[int, list[dict[str, Any]]] = {s: [_baseline("default", s), _baseline("fast", s)] for s in (1, 2)}


def decode(params: dict[str, Any]) -> dict[str, Any]:
    """Trial parameters → config overrides."""
    out = dict(params)
    for name in LIST_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = [int(v) for v in out[name].split("x")]
    return out


def parse_spec(stage: int, name: str, raw: Any, where: str) -> ParamSpec:
    """One entry of a search-space file → ParamSpec, with the file and parameter named in every error."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: stage{stage}.{name} must be a mapping such as {{type: categorical, choices: "
                          f"[...]}}, got {raw!r}")
    kind, extra = raw.get("type"), sorted(set(raw) - {"type", "choices", "low", "high", "log"})
    if kind not in KINDS or extra:
        raise ConfigError(f"{where}: stage{stage}.{name}: type must be one of {KINDS}"
                          + (f"; unknown field(s) {extra}" if extra else f", got {kind!r}"))
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: stage{stage}.{name}: a categorical parameter needs a non-empty choices list")
        return ParamSpec(kind, tuple(encode(name, c) if isinstance(c, list) else c for c in choices))
    try:
        low, high = float(raw["low"]), float(raw["high"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{where}: stage{stage}.{name}: an {kind} parameter needs numeric low and high") from None
    if not low <= high or (raw.get("log") and low <= 0):
        raise ConfigError(f"{where}: stage{stage}.{name}: need 0 < low <= high for log, low <= high otherwise")
    return ParamSpec(kind, low=low, high=high, log=bool(raw.get("log", False)))


def allowed_names(stage: int) -> list[str]:
    names = [f.name for f in dataclasses.fields(LatentWGANConfig) if f.name not in ("arch_version", "seed")]
    return sorted(n for n in names if stage == 1 or n not in STAGE1_ONLY)


def load_space(stage: int, path: str | None) -> dict[str, ParamSpec]:
    """The default space of ``stage`` with the entries of a YAML file (if any) applied."""
    space = dict(DEFAULT_SPACES[stage])
    if path is None:
        return space
    data = load_yaml(path)
    unknown_sections = sorted(set(data) - {"stage1", "stage2"})
    if unknown_sections:
        raise ConfigError(f"{path}: unknown section(s) {unknown_sections}; use stage1: and stage2:")
    section = data.get(f"stage{stage}") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: stage{stage} must be a mapping of parameter → range")
    known = allowed_names(stage)
    for name, raw in section.items():
        if name not in known:
            raise ConfigError(f"{path}: unknown stage-{stage} parameter {name!r}; searchable: {', '.join(known)}")
        if raw is None:
            space.pop(name, None)
        else:
            space[name] = parse_spec(stage, name, raw, str(path))
    return space


def check_space(space: dict[str, ParamSpec], base: LatentWGANConfig, where: str) -> None:
    """Every categorical choice and both ends of every range must give a valid config (before any trial)."""
    for name, spec in space.items():
        values = spec.choices if spec.kind == "categorical" else (spec.low, spec.high)
        for v in values:
            value = int(v) if spec.kind == "int" else v
            try:
                replace(base, decode({name: value}))
            except (ConfigError, ValueError) as e:
                raise ConfigError(f"{where}: {name}={v!r} is not a valid setting: {e}") from None


def space_to_dict(space: dict[str, ParamSpec]) -> dict[str, dict]:
    return {k: v.to_dict() for k, v in sorted(space.items())}
