"""Hyperparameter search of the two-stage model with Optuna (optional dependency: ``trajsynth[tune]``)."""

from .config import OptunaConfig
from .objectives import Stage1Objective, Stage2Objective
from .study import StudyManager

__all__ = ["OptunaConfig", "StudyManager", "Stage1Objective", "Stage2Objective"]
