"""The TCN-VAE family: a β-VAE on labelled multichannel series with activity and domain-adversarial heads."""

from ..base import Family
from .config import PRESETS, TCNVAEArch, TCNVAETrain
from .model import TCNVAE
from .training import TCNVAETraining

FAMILY = Family(
    name="tcn_vae",
    version=1,
    arch_cls=TCNVAEArch,
    train_cls=TCNVAETrain,
    model_cls=TCNVAE,
    training_cls=TCNVAETraining,
    presets=PRESETS,
    description="β-VAE with dilated causal TCN encoder and decoder (the decoder given the domain label), an "
                "activity classifier on z and a domain classifier behind a gradient-reversal layer; one phase fit "
                "(epochs, validation and early stopping on activity accuracy); generation per activity from its "
                "fitted latent distribution",
    phase_names=("fit",),
)

__all__ = ["FAMILY", "TCNVAE", "TCNVAEArch", "TCNVAETrain"]
