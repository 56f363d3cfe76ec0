"""Configuration of the classic TimeGAN (Yoon, Jarrett, van der Schaar, NeurIPS 2019), with conditions and lengths.

``TimeGANArch`` shapes the five networks and holds the data range they work in and the size of the
length table (stored in every checkpoint); ``TimeGANTrain`` is the shared
:class:`~trajsynth.config.TrainConfig` plus the three phases' lengths, the learning rate and the
loss weights of the original code, each a field.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...blocks.rnn import INITS, RNN_MODULES
from ...config import ConfigError, TrainConfig, at_least

# The range the networks work in. ``sigmoid``: the [-1, 1] features are mapped to [0, 1] and the
# recovery ends in a sigmoid, as the original on min-max scaled data (its loss weights were set on
# that scale); ``tanh``: the features as they are, a tanh output. ``auto``: decided by the
# training data when training starts (benchmark windows: sigmoid; mouse movements: tanh) and stored
# resolved in the run's config and checkpoints.
OUTPUTS = ("auto", "sigmoid", "tanh")


@dataclass
class TimeGANArch:
    feature_dim: int = 8
    condition_dim: int = 1  # the normalised distance (benchmark windows: one constant condition)
    max_seq_len: int = 100
    module: str = "gru"  # gru | lstm: every network's recurrent stack
    hidden_dim: int = 0  # every network's width; 0: 4 × feature_dim, the paper's rule (24 for Stocks' 6 features)
    num_layers: int = 3  # the supervisor has one fewer (at least one), as in the original
    noise_dim: int = 0  # per-step U[0, 1) noise of the generator; 0: feature_dim, as in the original
    output: str = "auto"
    # Starting weights: torch's defaults, or TensorFlow 1's (``tf1``: Glorot-uniform kernels, GRU gates
    # and LSTM forget gates at bias 1), those the original code trained from.
    weight_init: str = "torch"
    length_bins: int = 16  # equal-count bins of the training conditions, each with its own lengths
    length_quantiles: int = 64  # lengths kept per bin (its quantiles), drawn uniformly at generation

    def __post_init__(self) -> None:
        if self.module not in RNN_MODULES:
            raise ConfigError(f"module must be one of {RNN_MODULES}, got {self.module!r}")
        if self.weight_init not in INITS:
            raise ConfigError(f"weight_init must be one of {INITS}, got {self.weight_init!r}")
        if self.output not in OUTPUTS:
            raise ConfigError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        at_least(self, 1, ("feature_dim", "condition_dim", "max_seq_len", "num_layers", "length_bins",
                           "length_quantiles"))
        for name, zero in (("hidden_dim", "4 × feature_dim"), ("noise_dim", "feature_dim")):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0: {zero}), got {getattr(self, name)}")

    @property
    def width(self) -> int:
        """The hidden (and embedding) size every network uses."""
        return self.hidden_dim or 4 * self.feature_dim

    @property
    def z_dim(self) -> int:
        return self.noise_dim or self.feature_dim


@dataclass
class TimeGANTrain(TrainConfig):
    """Three phases of the common loop; weights as in the original code (G: 1, γ, 100·√S, 100·moments)."""

    # The original runs 10,000 of each (preset paper); on mouse movements (up to 100 steps) a joint
    # iteration costs ~1 s on one CPU core, so the default trains the cheap phases longer than the joint one.
    embedding_iterations: int = 5000  # phase 1: embedder + recovery on 10·√MSE
    supervised_iterations: int = 3000  # phase 2: supervisor on next-step prediction of embeddings
    joint_iterations: int = 5000  # phase 3: all five networks
    lr: float = 1e-3  # every Adam optimiser (the original's default)
    batch_size: int = 128
    # A batch is one of length_pool equal parts of a random pool of length_pool × batch_size sequences sorted by
    # length: similar lengths together, so variable-length data (mouse movements) waste little time on padding.
    # 1, and on fixed-length data whatever the value: plain random batches, as the original.
    length_pool: int = 8
    k_generator: int = 2  # generator (and embedder) updates per discriminator update in the joint phase
    gamma: float = 1.0  # weight of the raw-latent path (generator without supervisor), in G and D losses
    eta: float = 100.0  # weight of √(supervised loss) in the generator loss
    moment_weight: float = 100.0  # weight of the moment gap (|σ̂ − σ| + |μ̂ − μ|) in the generator loss
    # Not in the original (0: off): the same gap on the step-to-step differences, so that the generator is
    # also held to how each step follows the one before, not only to each step's own mean and spread.
    diff_moment_weight: float = 0.0
    recon_weight: float = 10.0  # the embedding loss is recon_weight · √MSE
    embed_supervised_weight: float = 0.1  # supervised loss added to the embedder's loss in the joint phase
    d_threshold: float = 0.15  # the discriminator is updated only while its loss is above this
    log_interval: int = 250
    eval_interval: int = 2500
    save_interval: int = 1000
    eval_samples: int = 1000  # validation sequences generated at each joint-phase evaluation

    def __post_init__(self) -> None:
        super().__post_init__()
        at_least(self, 1, ("embedding_iterations", "supervised_iterations", "joint_iterations", "k_generator",
                           "length_pool", "eval_samples"))
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        at_least(self, 0, ("gamma", "eta", "moment_weight", "diff_moment_weight", "recon_weight",
                           "embed_supervised_weight", "d_threshold"))


# Presets: differences from the defaults, in architecture and training keys alike.
PRESETS: dict[str, dict] = {
    "default": {},
    # The published settings: GRU, hidden 4 × features (24 on Stocks), 3 layers, batch 128, 10,000
    # iterations per phase (the original code's default), no clipping, sigmoid outputs.
    "paper": dict(module="gru", hidden_dim=0, num_layers=3, batch_size=128, embedding_iterations=10000,
                  supervised_iterations=10000, joint_iterations=10000, grad_clip=0.0, output="sigmoid"),
    # CPU: hidden 24 whatever the features (the original code's default; 4 × 28 on Energy costs ~5× the
    # time); the autoencoder and supervisor phases are cheap per iteration, the joint phase is not.
    "fast": dict(hidden_dim=24, embedding_iterations=3000, supervised_iterations=2000, joint_iterations=2500,
                 log_interval=250, eval_interval=2500, save_interval=1000),
    # For tests: seconds, not minutes.
    "tiny": dict(hidden_dim=8, num_layers=1, length_bins=4, length_quantiles=8, batch_size=16,
                 embedding_iterations=6, supervised_iterations=6, joint_iterations=6, log_interval=3,
                 eval_interval=6, save_interval=3, eval_samples=32),
}
