"""Hyperparameter search of any family's phases with Optuna (optional dependency: ``trajsynth[tune]``)."""

from .config import OptunaConfig
from .objectives import PhaseObjective
from .study import StudyManager

__all__ = ["OptunaConfig", "StudyManager", "PhaseObjective"]
