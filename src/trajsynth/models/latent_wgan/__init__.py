"""The two-stage latent WGAN-GP family (RTSGAN-style, "TimeGAN V6")."""

from ..base import Family
from .config import ARCH_VERSION, PRESETS, SEARCH_SPACE, LatentWGANArch, LatentWGANTrain
from .model import LatentWGAN
from .training import LatentWGANTraining

FAMILY = Family(
    name="latent_wgan",
    version=ARCH_VERSION,
    arch_cls=LatentWGANArch,
    train_cls=LatentWGANTrain,
    model_cls=LatentWGAN,
    training_cls=LatentWGANTraining,
    presets=PRESETS,
    description="two-stage latent WGAN-GP: LSTM autoencoder (stage1), then a conditional WGAN-GP on its "
                "frozen summary vectors (stage2)",
    search_space=SEARCH_SPACE,
    phase_names=("stage1", "stage2"),
)
