"""The classic TimeGAN family (Yoon et al., NeurIPS 2019), with a condition and variable lengths."""

from ..base import Family
from .config import PRESETS, TimeGANArch, TimeGANTrain
from .model import TimeGAN
from .training import TimeGANTraining

FAMILY = Family(
    name="timegan",
    version=1,
    arch_cls=TimeGANArch,
    train_cls=TimeGANTrain,
    model_cls=TimeGAN,
    training_cls=TimeGANTraining,
    presets=PRESETS,
    description="classic TimeGAN: recurrent embedder, recovery, generator, supervisor and discriminator; phases "
                "embedding (autoencoder), supervised (next-step embeddings) and joint (adversarial), with the "
                "condition fed to generator and discriminator and lengths drawn per condition",
    phase_names=("embedding", "supervised", "joint"),
)

__all__ = ["FAMILY", "TimeGAN", "TimeGANArch", "TimeGANTrain"]
