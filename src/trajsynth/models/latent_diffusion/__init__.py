"""Latent diffusion on the frozen summaries (or per-step latent sequences) of the two-stage autoencoder, with an
adversarial loop."""

from ..base import Family
from .autoencoder import start_from_autoencoder
from .config import PRESETS, LatentDiffusionArch, LatentDiffusionTrain
from .model import LatentDiffusion
from .training import LatentDiffusionTraining

FAMILY = Family(
    name="latent_diffusion",
    version=1,
    arch_cls=LatentDiffusionArch,
    train_cls=LatentDiffusionTrain,
    model_cls=LatentDiffusion,
    training_cls=LatentDiffusionTraining,
    presets=PRESETS,
    description="latent diffusion: the two-stage model's autoencoder (stage 1, frozen), a DDPM with classifier-free "
                "guidance and EMA weights on its summary vectors, or with a 1-D U-Net on its per-step latent sequences "
                "(DDIM or ancestral sampling), then (summaries) an adversarial "
                "loop of a latent discriminator and the diffusion model (generate, encode, discriminator, diffusion)",
    phase_names=("autoencoder", "diffusion") + tuple(f"loop{k}_{s}" for k in (1, 2, 3)
                                                       for s in ("generate", "encode", "discriminator", "diffusion")),
    start_from=start_from_autoencoder,
)

__all__ = ["FAMILY", "LatentDiffusion", "LatentDiffusionArch", "LatentDiffusionTrain"]
