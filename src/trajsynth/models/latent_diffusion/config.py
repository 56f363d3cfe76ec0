"""Configuration of the latent diffusion family: a DDPM on the summaries of a frozen two-stage autoencoder.

``LatentDiffusionArch`` shapes the weights (the autoencoder's own architecture, the denoiser, the
latent discriminator of the adversarial loop) and holds the sampling choices (DDIM steps, sampler,
guidance scale), which change no weights; ``LatentDiffusionTrain`` is the shared
:class:`~trajsynth.config.TrainConfig` plus the autoencoder phase, the DDPM phase and the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ...config import ConfigError, TrainConfig, at_least, unknown_keys_message
from ..registry import RunConfig, get_family, run_config

AUTOENCODER_FAMILY = "latent_wgan"

SCHEDULES = ("cosine", "linear")
SAMPLERS = ("ddim", "ddpm")
LATENTS = ("summary", "sequence")


@dataclass
class LatentDiffusionArch:
    feature_dim: int = 8
    condition_dim: int = 1
    max_seq_len: int = 100
    # The stage-1 autoencoder: latent_wgan architecture keys over its preset ``autoencoder_preset``; a run
    # started with --autoencoder CKPT stores that checkpoint's whole architecture here.
    autoencoder: dict[str, Any] = field(default_factory=lambda: {"directed": True, "decoder_noise_dim": 8,
                                                                 "path_from": "increments"})
    autoencoder_preset: str = "fast"
    # What the diffusion runs on: the autoencoder's summary vectors (an MLP denoiser) or its encoder's per-step
    # latent sequences, decoded by its decoder directly (a 1-D U-Net over time, unet.py).
    latents: str = "summary"
    # The summary denoiser: an MLP of residual blocks on the noisy summary, with timestep and condition embeddings.
    denoiser_hidden_dim: int = 512
    denoiser_blocks: int = 4
    embed_dim: int = 128
    # The sequence denoiser: the U-Net's widths from the full resolution down (one halving of time per entry after
    # the first), residual blocks per level, GroupNorm groups (every width a multiple of it).
    unet_channels: list[int] = field(default_factory=lambda: [64, 128, 128])
    unet_blocks: int = 1
    unet_groups: int = 8
    num_timesteps: int = 1000
    schedule: str = "cosine"
    # Sampling (no weights depend on these): DDIM with ddim_steps (the design's 100), or ancestral DDPM over all
    # num_timesteps; classifier-free guidance ε = ε_u + s·(ε_c − ε_u), s = guidance_scale (1: conditional only).
    sampler: str = "ddim"
    ddim_steps: int = 100
    guidance_scale: float = 1.0
    # The adversarial loop's discriminator on (summary, condition).
    discriminator_hidden_dims: list[int] = field(default_factory=lambda: [256, 256])

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.latents not in LATENTS:
            raise ConfigError(f"latents must be one of {LATENTS}, got {self.latents!r}")
        self._check_unet()
        if not isinstance(self.autoencoder, dict):
            raise ConfigError(f"autoencoder must be a mapping of latent_wgan architecture keys, got "
                              f"{type(self.autoencoder).__name__}")
        at_least(self, 1, ("feature_dim", "condition_dim", "max_seq_len", "denoiser_hidden_dim", "denoiser_blocks",
                           "embed_dim", "num_timesteps"))
        if not 1 <= self.ddim_steps <= self.num_timesteps:
            raise ConfigError(f"ddim_steps must be in 1..num_timesteps ({self.num_timesteps}), got {self.ddim_steps}")
        at_least(self, 0, ("guidance_scale",))
        if any(d < 1 for d in self.discriminator_hidden_dims):
            raise ConfigError(f"discriminator_hidden_dims must all be >= 1, got {self.discriminator_hidden_dims}")
        autoencoder_run(self)  # the autoencoder's keys are checked by its own family

    def _check_unet(self) -> None:
        if not isinstance(self.unet_channels, list) or len(self.unet_channels) < 2:
            raise ConfigError(f"unet_channels must be a list of at least 2 widths (the full resolution, then one per "
                              f"halving of time), got {self.unet_channels!r}")
        if self.unet_blocks < 1 or self.unet_groups < 1:
            raise ConfigError(f"unet_blocks and unet_groups must be >= 1, got {self.unet_blocks}, {self.unet_groups}")
        if any(c < 1 or c % self.unet_groups for c in self.unet_channels):
            raise ConfigError(f"unet_channels must all be positive multiples of unet_groups ({self.unet_groups}), "
                              f"got {self.unet_channels}")


def autoencoder_run(cfg: LatentDiffusionArch) -> RunConfig:
    """The autoencoder's latent_wgan run config: its preset, the stored architecture keys, the data's sizes."""
    fam = get_family(AUTOENCODER_FAMILY)
    known = {f.name for f in fields(fam.arch_cls)}
    unknown = sorted(set(cfg.autoencoder) - known)
    if unknown:
        raise ConfigError(f"autoencoder: {unknown_keys_message(unknown, known)} of a {fam.name} architecture")
    sizes = dict(feature_dim=cfg.feature_dim, condition_dim=cfg.condition_dim, max_seq_len=cfg.max_seq_len)
    try:
        return run_config(fam.name, cfg.autoencoder_preset, **{**cfg.autoencoder, **sizes})
    except ConfigError as e:
        raise ConfigError(f"autoencoder: {e}") from None


@dataclass
class LatentDiffusionTrain(TrainConfig):
    # Phase autoencoder (skipped when --autoencoder gives a finished one): the two-stage model's stage 1.
    autoencoder_iterations: int = 3000
    lr_autoencoder: float = 1e-3
    # Phase diffusion: DDPM noise prediction on the frozen summaries.
    diffusion_iterations: int = 20000
    lr_diffusion: float = 2e-4
    batch_size: int = 256
    ema_decay: float = 0.999
    p_uncond: float = 0.1  # condition dropped (the null embedding) this often, for classifier-free guidance
    eval_samples: int = 1024  # summaries generated at each evaluation (MMD, coverage vs validation summaries)
    # The adversarial loop (the design's four steps per iteration). num_loops is the design's num_iterations (0: no
    # loop); a key ending in _iterations is a phase's length, which quick-test sets.
    num_loops: int = 3
    num_samples: int = 5000  # fakes generated with DDIM and reals encoded per iteration
    discriminator_epochs: int = 50
    diffusion_epochs: int = 50
    lr_discriminator: float = 1e-3
    lr_loop: float = 5e-5  # the denoiser's rate in the loop's diffusion epochs
    discriminator_weight: float = 0.05  # of the discriminator's BCE on the denoised estimate, next to the noise loss
    loop_eval_every: int = 5  # loop epochs between validations (the design's eval_interval)
    loop_sample_every: int = 10  # loop epochs between DDPM sample checks (the design's sample_interval)
    log_interval: int = 500
    eval_interval: int = 5000
    save_interval: int = 5000

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self, 1, ("num_samples", "discriminator_epochs", "diffusion_epochs", "loop_eval_every",
                           "loop_sample_every", "eval_samples"))
        at_least(self, 0, ("autoencoder_iterations", "diffusion_iterations", "num_loops"))
        for name in ("lr_autoencoder", "lr_diffusion", "lr_discriminator", "lr_loop"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.p_uncond < 1:
            raise ConfigError(f"p_uncond must be in [0, 1), got {self.p_uncond}")
        if self.discriminator_weight < 0:
            raise ConfigError(f"discriminator_weight must be >= 0, got {self.discriminator_weight}")


def check_run(arch: LatentDiffusionArch, train: LatentDiffusionTrain) -> None:
    """What no one config can check alone: the adversarial loop's discriminator reads summaries only."""
    if arch.latents == "sequence" and train.num_loops > 0:
        raise ConfigError(f"the adversarial loop works on summaries only: latents 'sequence' needs num_loops=0, "
                          f"got num_loops={train.num_loops}")


# Presets: differences from the defaults, in architecture and training keys alike.
PRESETS: dict[str, dict] = {
    "default": {},
    "fast": dict(denoiser_hidden_dim=256, denoiser_blocks=3, diffusion_iterations=8000, num_samples=2000,
                 discriminator_epochs=20, diffusion_epochs=20, eval_interval=2000, save_interval=2000),
    # For tests: seconds, not minutes.
    "tiny": dict(autoencoder={"latent_dim": 8, "summary_dim": 16, "encoder_hidden_dim": 16, "encoder_num_layers": 1,
                              "decoder_hidden_dim": 16, "decoder_num_layers": 1, "expander_hidden_dim": 16,
                              "generator_hidden_dims": [16], "critic_hidden_dims": [16], "condition_embed_dim": 8,
                              "directed": True},
                 denoiser_hidden_dim=32, denoiser_blocks=1, embed_dim=16, unet_channels=[8, 16, 16], unet_groups=4,
                 num_timesteps=50, ddim_steps=10,
                 discriminator_hidden_dims=[16], autoencoder_iterations=10, diffusion_iterations=12, batch_size=32,
                 eval_samples=64, num_loops=3, num_samples=64, discriminator_epochs=3, diffusion_epochs=4,
                 loop_eval_every=2, loop_sample_every=2, log_interval=4, eval_interval=6, save_interval=6),
}
