"""The ar_mdn family: an autoregressive mixture-density model of logged mouse events, one step at a time."""

from ..base import Family
from .config import PRESETS, ARMDNConfig, ARMDNTrain
from .model import ARMDNModel
from .training import ARMDNTraining

FAMILY = Family(
    name="ar_mdn",
    version=2,  # 2: plan_angles (the direction drawn with the plan)
    arch_cls=ARMDNConfig,
    train_cls=ARMDNTrain,
    model_cls=ARMDNModel,
    training_cls=ARMDNTraining,
    presets=PRESETS,
    description="autoregressive mixture-density step model: a GRU draws each logged event's kind (move, arrive, "
                "press), integer-ms interval and pixel step toward the target (phase fit; with critic=true, "
                "phase critic: a GRU critic that picks among candidates; with adv_iterations > 0, phase adversarial: "
                "policy gradient on the critic's verdict)",
    phase_names=("fit", "critic", "adversarial"),
    optional_phases=("critic", "adversarial"),  # with critic=true; with adv_iterations > 0
)

__all__ = ["FAMILY", "ARMDNConfig", "ARMDNModel"]
