"""The procedural family: a non-neural movement model whose every constant is fitted to the training split."""

from ..base import Family
from .config import ProceduralConfig
from .model import ProceduralModel
from .training import ProceduralTrain, ProceduralTraining

FAMILY = Family(
    name="procedural",
    version=1,
    arch_cls=ProceduralConfig,
    train_cls=ProceduralTrain,
    model_cls=ProceduralModel,
    training_cls=ProceduralTraining,
    presets={"default": {}, "fast": {}, "tiny": {"calibration_movements": 200, "eval_samples": 200}},
    description="fitted non-neural baseline: Fitts's-law timing, minimum-jerk submovements with overshoot, "
                "curvature and the dataset's event clock, all fitted to the training split (one phase: fit)",
    phase_names=("fit",),
)

__all__ = ["FAMILY", "ProceduralConfig", "ProceduralModel"]
