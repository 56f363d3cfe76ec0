"""Configuration of the two-stage latent WGAN-GP ("TimeGAN V6", arch_version 6).

``LatentWGANArch`` is what shapes the network (stored in every checkpoint, taken over by a
stage-2 run from its stage-1 checkpoint); ``LatentWGANTrain`` is how it is trained: the shared
:class:`~trajsynth.config.TrainConfig` plus the learning rates, loss weights and lengths of the
two stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...blocks.expanders import EXPAND_TYPES
from ...blocks.mlp import CRITIC_TYPES, GENERATOR_TYPES
from ...blocks.pooling import POOL_TYPES
from ...config import ConfigError, TrainConfig, at_least

ARCH_VERSION = 6
PATH_SOURCES = ("positions", "increments")
DECODER_TYPES = ("regression", "mixture")


@dataclass
class LatentWGANArch:
    feature_dim: int = 8
    latent_dim: int = 48
    summary_dim: int = 96
    noise_dim: int = 128
    condition_dim: int = 1
    max_seq_len: int = 100
    encoder_hidden_dim: int = 64
    encoder_num_layers: int = 3
    decoder_hidden_dim: int = 64
    decoder_num_layers: int = 3
    pool_type: str = "attention"
    expand_type: str = "parallel"
    expander_hidden_dim: int = 64
    expander_num_layers: int = 1
    generator_type: str = "mlp"
    generator_hidden_dims: list[int] = field(default_factory=lambda: [256, 256, 256])
    critic_type: str = "mlp"
    critic_hidden_dims: list[int] = field(default_factory=lambda: [256, 256, 256])
    condition_embed_dim: int = 64
    # > 0: a stochastic decoder, with this many noise dimensions per step (blocks/step_noise.py); 0: deterministic
    decoder_noise_dim: int = 0
    # "regression": the design's LSTM decoder, trained on squared error, returns each step's mean; "mixture": the
    # same decoder plus each step's residual from that mean, drawn given the previous one from a mixture of
    # decoder_components diagonal Gaussians trained by likelihood (blocks/mixture_decoder.py); decoder_temperature
    # multiplies its σ when drawing (a decoding choice)
    decoder_type: str = "regression"
    decoder_components: int = 8
    decoder_temperature: float = 1.0
    # True: the condition is the distance and the movement's direction (cos, sin of its end point's angle), so a
    # movement is generated for an actual end point; False: the distance only (condition_dim values)
    directed: bool = False
    # how decoded features become a pixel path: "positions" (the start-relative dx, dy of each step, the exact
    # inverse for real data) or "increments" (speed · dt along the heading, summed, ending on the decoded end
    # point: see data/features.py _integrated); a decoding choice only, no weights depend on it
    path_from: str = "positions"
    arch_version: int = ARCH_VERSION

    def __post_init__(self) -> None:
        choices = {"pool_type": POOL_TYPES, "expand_type": EXPAND_TYPES, "generator_type": GENERATOR_TYPES,
                   "critic_type": CRITIC_TYPES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        positive = ("feature_dim", "summary_dim", "noise_dim", "condition_dim", "max_seq_len", "encoder_hidden_dim",
                    "encoder_num_layers", "decoder_hidden_dim", "decoder_num_layers", "expander_hidden_dim",
                    "expander_num_layers", "condition_embed_dim")
        at_least(self, 1, positive)
        for name in ("generator_hidden_dims", "critic_hidden_dims"):
            if any(d < 1 for d in getattr(self, name)):
                raise ConfigError(f"{name} must all be >= 1, got {getattr(self, name)}")
        if self.arch_version != ARCH_VERSION:
            raise ConfigError(f"arch_version {self.arch_version} is not supported (this build: {ARCH_VERSION})")
        if self.path_from not in PATH_SOURCES:
            raise ConfigError(f"path_from must be one of {PATH_SOURCES}, got {self.path_from!r}")
        if self.decoder_noise_dim < 0:
            raise ConfigError(f"decoder_noise_dim must be >= 0, got {self.decoder_noise_dim}")
        if self.decoder_type not in DECODER_TYPES:
            raise ConfigError(f"decoder_type must be one of {DECODER_TYPES}, got {self.decoder_type!r}")
        if self.decoder_type == "mixture" and self.decoder_noise_dim > 0:
            raise ConfigError("decoder_type 'mixture' draws every step itself: set decoder_noise_dim to 0 "
                              f"(got {self.decoder_noise_dim})")
        if self.decoder_components < 1:
            raise ConfigError(f"decoder_components must be >= 1, got {self.decoder_components}")
        if not self.decoder_temperature > 0:
            raise ConfigError(f"decoder_temperature must be > 0, got {self.decoder_temperature}")
        if self.latent_dim < 2:
            raise ConfigError(f"latent_dim must be >= 2, got {self.latent_dim}")


@dataclass
class LatentWGANTrain(TrainConfig):
    # Stage 1 (autoencoder)
    lr_autoencoder: float = 1e-3
    lambda_recon: float = 1.0
    lambda_latent: float = 0.5
    lambda_length: float = 0.1
    lambda_condition: float = 0.1
    lambda_kl: float = 0.05  # the stochastic decoder's KL(posterior ‖ prior) per step (decoder_noise_dim > 0)
    stage1_iterations: int = 15000
    stage1_threshold: float = 0.05
    # The direct path (encoder → decoder) passes the threshold long before the bottleneck is
    # trained: on SapiMouse, direct < 0.05 at iteration 500 (validation direct MSE 0.030) while
    # the reconstruction through the summary was still 0.12; by 6000 they were 0.005 and 0.062.
    stage1_min_iterations: int = 6000
    # Stage 2 (WGAN-GP)
    lr_generator: float = 1e-4
    lr_discriminator: float = 1e-4
    n_critic: int = 5
    lambda_gp: float = 10.0
    use_feature_matching: bool = True
    lambda_fm: float = 1.0
    lambda_cond_guard: float = 1.0
    stage2_iterations: int = 30000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_critic < 1:
            raise ConfigError(f"n_critic must be >= 1, got {self.n_critic}")
        for name in ("lr_autoencoder", "lr_generator", "lr_discriminator"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")


# Presets: differences from the defaults, in architecture and training keys alike.
PRESETS: dict[str, dict] = {
    "default": {},
    "fast": dict(latent_dim=32, summary_dim=64, noise_dim=64, encoder_hidden_dim=48, decoder_hidden_dim=48,
                 expander_hidden_dim=48, generator_hidden_dims=[128, 128], critic_hidden_dims=[128, 128],
                 stage1_iterations=3000, stage1_min_iterations=1500, stage2_iterations=3000, eval_interval=500,
                 save_interval=1000),
    "large": dict(latent_dim=64, summary_dim=128, noise_dim=192, encoder_hidden_dim=128, decoder_hidden_dim=128,
                  expander_hidden_dim=192, pool_type="hybrid", generator_hidden_dims=[512, 512, 512],
                  critic_hidden_dims=[512, 512, 512], stage1_iterations=30000, stage2_iterations=60000),
    # For smoke tests: seconds, not minutes.
    "tiny": dict(latent_dim=8, summary_dim=16, noise_dim=16, encoder_hidden_dim=16, encoder_num_layers=1,
                 decoder_hidden_dim=16, decoder_num_layers=1, expander_hidden_dim=16, expander_num_layers=1,
                 generator_hidden_dims=[32], critic_hidden_dims=[32], condition_embed_dim=8, n_critic=2,
                 stage1_iterations=20, stage2_iterations=20, batch_size=16, log_interval=5, eval_interval=10,
                 save_interval=10),
}

# fast with the mixture decoder, for movements: directed, paths from increments, and stage 1 run to its end (8,000
# iterations; the threshold would stop it at 1,500, long before the mixture has learned the residuals)
PRESETS["mixture"] = {**PRESETS["fast"], "decoder_type": "mixture", "decoder_temperature": 0.5, "directed": True,
                      "path_from": "increments", "stage1_iterations": 8000, "stage1_threshold": 0.0}

# The design's search spaces (trajsynth tune), per phase.
_HIDDEN = ["128x128", "256x256", "256x256x256", "512x512", "512x512x512"]
SEARCH_SPACE: dict[str, dict[str, dict]] = {
    "stage1": {
        "latent_dim": {"type": "categorical", "choices": [32, 48, 64, 96]},
        "summary_dim": {"type": "categorical", "choices": [64, 96, 128, 192]},
        "pool_type": {"type": "categorical", "choices": ["attention", "mean", "last", "hybrid"]},
        "expand_type": {"type": "categorical", "choices": ["lstm", "mlp", "repeat", "parallel"]},
        "lr_autoencoder": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
        "lr_schedule": {"type": "categorical", "choices": ["none", "cosine", "step", "plateau"]},
        "lambda_recon": {"type": "float", "low": 0.5, "high": 2.0},
        "lambda_latent": {"type": "float", "low": 0.1, "high": 1.0},
    },
    "stage2": {
        "noise_dim": {"type": "categorical", "choices": [64, 128, 192, 256]},
        "generator_hidden_dims": {"type": "categorical", "choices": _HIDDEN},
        "critic_hidden_dims": {"type": "categorical", "choices": _HIDDEN},
        "lr_generator": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "lr_discriminator": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "n_critic": {"type": "int", "low": 1, "high": 10},
        "lambda_gp": {"type": "float", "low": 1.0, "high": 50.0, "log": True},
        "use_feature_matching": {"type": "categorical", "choices": [True, False]},
    },
}
