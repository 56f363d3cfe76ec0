"""Settings of a hyperparameter search (not of the model: those are the family's config keys)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, at_least
from ..models.registry import SERIES_FAMILY, get_family
from .storage import HEARTBEAT_S, default_url

MODES = ("pareto", "single")


@dataclass
class OptunaConfig:
    """Where a study lives and how its trials are trained and scored.

    mode ``pareto``: two objectives per stage, a Pareto front, no Optuna pruner (Optuna cannot
    prune multi-objective studies). mode ``single``: one objective (stage 1 reconstruction MSE,
    stage 2 summary MMD) reported at every evaluation, and a Hyperband pruner stops unpromising
    trials early. In both modes a stage-2 trial counts as feasible only with a summary coverage of
    at least ``min_coverage`` (a constraint), and the collapse guard stops one whose coverage is
    still below ``collapse_coverage`` after ``guard_from`` of its iterations.
    """

    family: str = SERIES_FAMILY
    data_dir: str | None = None  # None: the embedded SapiMouse sample
    out_dir: str = "tuning"
    storage: str | None = None  # None: sqlite:///<out_dir>/optuna.db
    study_name: str | None = None  # None: trajsynth_<phase> (other families: trajsynth_<family>_<phase>)
    preset: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)  # config keys fixed for every trial (--set)
    space_file: str | None = None
    mode: str = "pareto"
    seed: int | None = None  # sampler seed; None: fresh entropy per worker (workers never repeat each other)
    n_startup_trials: int = 10
    enqueue_baselines: bool = True
    min_coverage: float = 0.25  # constraint on a finished stage-2 trial
    collapse_coverage: float = 0.05  # collapse guard: a trained default model is at 0.7 after 1000 iterations
    guard_from: float = 0.5
    eval_samples: int = 1000  # validation sequences for the discriminative score
    disc_iterations: int = 2000  # TimeGAN protocol's classifier iterations
    hyperband_reduction_factor: int = 3
    heartbeat: int = HEARTBEAT_S  # RDB storages: a trial whose worker is silent 3 heartbeats is failed and retried
    tensorboard: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        presets = get_family(self.family).presets
        if self.preset not in presets:
            raise ConfigError(f"unknown preset {self.preset!r} for family {self.family}; choose from {sorted(presets)}")
        for name in ("min_coverage", "collapse_coverage", "guard_from"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        at_least(self, 1, ("eval_samples", "disc_iterations", "n_startup_trials", "hyperband_reduction_factor",
                           "heartbeat"))

    @property
    def storage_url(self) -> str:
        return self.storage or default_url(self.out_dir)

    @property
    def checkpoint_root(self) -> Path:
        return Path(self.out_dir) / "checkpoints" / "optuna"

    def name_for(self, phase: str, chained: bool = False) -> str:
        """Study name of ``phase``; when phases are chained the given name is a prefix (NAME_stage1, ...)."""
        if self.study_name and not chained:
            return self.study_name
        default = "trajsynth" if self.family == SERIES_FAMILY else f"trajsynth_{self.family}"
        return f"{self.study_name or default}_{phase}"
