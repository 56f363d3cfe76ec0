"""Configuration of the TCN-VAE: a β-VAE on labelled multichannel series with activity and domain heads.

``TCNVAEArch`` shapes the networks (stored in every checkpoint); sizes that follow the data
(``feature_dim``, ``num_activities``, ``num_domains``) may be left at 0 and are resolved from the
training data when training starts. ``TCNVAETrain`` is the shared
:class:`~trajsynth.config.TrainConfig` plus the design's loss weights and schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config import ConfigError, TrainConfig, at_least


@dataclass
class TCNVAEArch:
    feature_dim: int = 0  # 0: the data's channels
    condition_dim: int = 1  # the normalised condition (mouse: the distance), given to the decoder
    max_seq_len: int = 100
    num_activities: int = 0  # 0: from the data's activity labels (1 when it has none)
    num_domains: int = 0  # 0: from the data's domain labels (1 when it has none)
    latent_dim: int = 64
    channels: list[int] = field(default_factory=lambda: [64, 64, 64, 64])  # one residual block each, dilation 2^i
    kernel_size: int = 3
    dropout: float = 0.25  # in every TCN block (the design: 0.2-0.3)
    domain_embedding: int = 8  # the decoder's domain label, embedded
    head_hidden: int = 64  # activity and domain classifiers: latent → hidden → classes
    length_bins: int = 16  # lengths drawn per condition bin at generation (fixed-length data: one length)
    length_quantiles: int = 64

    def __post_init__(self) -> None:
        at_least(self, 1, ("condition_dim", "max_seq_len", "latent_dim", "kernel_size", "domain_embedding",
                           "head_hidden", "length_bins", "length_quantiles"))
        for name in ("feature_dim", "num_activities", "num_domains"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0: from the data), got {getattr(self, name)}")
        if not self.channels or any(not isinstance(c, int) or c < 1 for c in self.channels):
            raise ConfigError(f"channels must be a non-empty list of positive integers, got {self.channels!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def resolved(self) -> bool:
        return self.feature_dim > 0 and self.num_activities > 0 and self.num_domains > 0


@dataclass
class TCNVAETrain(TrainConfig):
    """One phase ``fit`` of ``epochs`` passes over the training data; validation after every epoch."""

    # CPU default: merged SapiMouse + Balabit (44k training movements) runs ~95 s an epoch at batch 64 on one core,
    # so 10 epochs take ~16 min; the design trains for hours (patience 50 in its overnight runs).
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4  # AdamW
    beta: float = 1.0  # KL weight
    beta_warmup_epochs: int = 0  # β grows linearly from 0 over these epochs (against posterior collapse); 0: off
    lambda_act: float = 1.0
    lambda_dom: float = 0.1
    # Weight of a kernel two-sample penalty (MMD², Gaussian kernels at several widths on batch-standardised μ)
    # between each domain's posterior means and the other domains' in the batch: the domains' z distributions
    # themselves are pulled together, not only one classifier fooled. 0: off (the design's loss).
    lambda_mmd: float = 0.0
    label_smoothing: float = 0.1  # of the activity loss
    grl_epochs: int = 10  # the reversal strength α reaches ~1 after this many epochs' worth of batches
    restart_epochs: int = 20  # cosine annealing with warm restarts: T_0 (epochs)
    restart_mult: int = 2  # T_mult
    noise_std: float = 0.01  # Gaussian noise added to the training inputs (augmentation); 0: off
    patience: int = 5  # epochs without a better validation activity accuracy before stopping; 0: never
    grad_clip: float = 1.0
    log_interval: int = 100  # batches, as the design's console lines
    eval_interval: int = 1000  # ignored: the phase validates after every epoch
    save_interval: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self, 1, ("epochs", "grl_epochs", "restart_epochs", "restart_mult"))
        at_least(self, 0, ("weight_decay", "beta", "beta_warmup_epochs", "lambda_act", "lambda_dom", "lambda_mmd",
                           "noise_std", "patience"))
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


# Presets: differences from the defaults, in architecture and training keys alike.
PRESETS: dict[str, dict] = {
    "default": {},
    # The design's tuned weights from its overnight runs (β 0.4, λ_act 2.5, λ_dom 0.05, lr 3e-4, clip 0.8,
    # patience 50), with an epoch budget a CPU finishes.
    "overnight": dict(beta=0.4, lambda_act=2.5, lambda_dom=0.05, lr=3e-4, grad_clip=0.8, patience=50,
                      epochs=200),
    # Small labelled sets (BasicMotions: 32 training cases): at batch 32 an epoch would be one update, so smaller
    # batches and more epochs; about 30 s on one CPU core.
    "small": dict(batch_size=8, epochs=300, patience=100),
    # For tests: seconds, not minutes.
    "tiny": dict(latent_dim=8, channels=[8, 8], head_hidden=8, domain_embedding=2, length_bins=4,
                 length_quantiles=8, batch_size=16, epochs=3, log_interval=2, save_interval=3, patience=2),
}
