"""Configuration of the autoregressive mixture-density step model (``ar_mdn``).

``ARMDNConfig`` shapes the network and the sampling (stored in every checkpoint); the fields that
size buffers or output layers (``n_components``, ``dt_exact_ms``, ``dt_log_buckets``,
``n_angle_bins``, ...) must match between a checkpoint and the model it loads into.
``ARMDNTrain`` holds the shared training settings plus this family's learning rate and length.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config import ConfigError, TrainConfig, at_least

STEP_SCALES = ("remaining", "motion", "distance")


@dataclass
class ARMDNConfig:
    """Network sizes, the interval classes, the step scaling and the sampling temperature."""

    # Output format, shared with every family.
    max_seq_len: int = 100  # most points per movement; a movement still going at the last step stops there
    feature_dim: int = 8  # the 8-feature trajectory format (fixed)
    condition_dim: int = 1  # the condition is the normalised start-to-end distance (fixed)
    # Network.
    hidden_dim: int = 128  # GRU width
    num_layers: int = 1  # stacked GRU layers
    # On the GRU's outputs before the heads, in training only. 0.2 lowered the validation NLL (5.143 → 5.052 nats a
    # step on SapiMouse) but not the classifier scores (README), so it is off.
    dropout: float = 0.0
    dt_embed_dim: int = 16  # learned embedding of an interval class (the previous one as input, the drawn one)
    head_dim: int = 128  # hidden width of the mixture head
    n_components: int = 8  # Gaussian components of the step mixture
    heading_components: int = 3  # of them predicted in the previous step's frame
    screen_components: int = 2  # of them predicted in the screen frame (the rest: in the target frame)
    grid_radius: int = 3  # steps within ±grid_radius px on both axes are classes of their own (0: none)
    # Larger steps in three classes: free, along the screen's x axis (dy = 0) and along its y axis (dx = 0); an
    # axis step draws its one coordinate from the mixture's marginal. People's larger steps lie on an axis 2-5×
    # as often as rounded Gaussians put them there (SapiMouse test users: 10.3 % of the steps of 15-50 px, the
    # default model 3.4 %, with this option 9.7 %); the classifier scores did not change (README), so it is off.
    axis_classes: bool = False
    use_direction: bool = True  # give the network the target's screen direction (cos, sin) as an input
    # Intervals: one class per integer ms below dt_exact_ms, then log-spaced buckets up to dt_max_ms.
    dt_exact_ms: int = 64
    dt_log_buckets: int = 16
    dt_max_ms: int = 1000  # longer intervals fall into the last bucket
    # Steps are predicted in the target frame (target along +x), divided by a scale: ``remaining``
    # = sqrt(|remaining displacement|² + scale_floor_px²), ``motion`` = the same with |previous step|²
    # added, ``distance`` = the movement's distance.
    step_scale: str = "motion"
    scale_floor_px: float = 2.0
    momentum: bool = False  # mixture means are offsets from the step that keeps the previous velocity
    min_log_sigma: float = -7.0  # floor of a component's log σ (in scaled units)
    n_angle_bins: int = 72  # histogram of training target directions (direction_source="histogram")
    direction_source: str = "plan"  # a generated target's direction: "plan" (the plan's movement's) | "histogram"
    use_plan: bool = True  # condition every step on the movement's duration and reach (drawn per distance bin)
    # Two more numbers in the plan, its shape: the signed lateral excursion (the point farthest from the straight
    # line, across it, / distance) and the share of the duration spent before 90 % of the distance is covered.
    plan_shape: bool = False
    n_plan_bins: int = 16  # equal-count bins of log distance of the plan table
    plan_records: int = 512  # plans kept per bin (drawn with replacement from the bin's training movements)
    # Sampling: class logits divided by a temperature, each Gaussian's variance multiplied by one. Measured
    # on SapiMouse (disc_timegan / disc_strong, 14,000 iterations): variance × 1.0 → 0.209 / 0.233, × 0.3 →
    # 0.147 / 0.179, × 0.05 → 0.142 / 0.308; step and interval temperatures 0.6 / 0.85 → 0.170 / 0.288.
    # After 28,000 iterations (two evaluation seeds each): × 0.3 → 0.129–0.136 / 0.183–0.208, × 0.5 →
    # 0.132–0.141 / 0.139–0.155: a better-fitted model needs less narrowing.
    temperature: float = 1.0  # of the step: small-step classes and mixture weights
    dt_temperature: float = 1.0  # of the interval classes
    sigma_temperature: float = 0.5  # variance factor of the step's Gaussians
    # A critic: a GRU over the trajectory features, trained (phase ``critic``) to tell the training users'
    # movements from the model's own. With it, ``candidates`` movements are drawn per requested one and one
    # is kept with probability proportional to exp(critic logit), the critic's estimate of the density ratio
    # people / model (importance resampling, as in discriminator rejection sampling). candidates 1: no choice.
    critic: bool = False
    critic_hidden: int = 64
    critic_layers: int = 2
    candidates: int = 1
    # A movement that did not arrive by itself -- still going at max_seq_len, or its press jumps more than
    # max_press_jump_px onto the target -- is started over (same target, a new plan), up to ``redraws`` times.
    # People's presses do not jump; the default model's do in 2 % of its movements, 0.2 % by over 1,000 px.
    redraws: int = 0
    max_press_jump_px: float = 5.0
    # A drawn step faster than max_step_speed px/ms over its interval is drawn again (up to 8 tries; 0: off).
    # A mixture's tail draws steps people do not make: 0.48 % of the default model's steps are faster than
    # 20 px/ms, against 0.01 % of the training users' (whose 99.99th percentile is 20.5 px/ms).
    max_step_speed: float = 0.0

    def __post_init__(self) -> None:
        if self.feature_dim != 8:
            raise ConfigError(f"feature_dim must be 8 (the trajectory format), got {self.feature_dim}")
        if self.condition_dim != 1:
            raise ConfigError(f"condition_dim must be 1 (the distance), got {self.condition_dim}")
        minimum = {"grid_radius": 0, "max_seq_len": 3, "hidden_dim": 1, "num_layers": 1, "dt_embed_dim": 1,
                   "head_dim": 1, "n_components": 1, "dt_exact_ms": 1, "dt_log_buckets": 1, "n_angle_bins": 1,
                   "n_plan_bins": 1, "plan_records": 1, "critic_hidden": 1, "critic_layers": 1, "candidates": 1,
                   "redraws": 0}
        for name, low in minimum.items():
            at_least(self, low, (name,))
        if min(self.heading_components, self.screen_components) < 0 \
                or self.heading_components + self.screen_components > self.n_components:
            raise ConfigError(f"heading_components ({self.heading_components}) and screen_components "
                              f"({self.screen_components}) must be >= 0 and add up to at most n_components "
                              f"({self.n_components})")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.axis_classes and self.grid_radius < 1:
            raise ConfigError("axis_classes needs grid_radius >= 1 (the axis classes are classes of the step head)")
        if self.dt_max_ms <= self.dt_exact_ms + self.dt_log_buckets:
            raise ConfigError(f"dt_max_ms ({self.dt_max_ms}) must exceed dt_exact_ms + dt_log_buckets "
                              f"({self.dt_exact_ms + self.dt_log_buckets}): every bucket needs a millisecond")
        if self.direction_source not in ("plan", "histogram"):
            raise ConfigError(f"direction_source must be 'plan' or 'histogram', got {self.direction_source!r}")
        if self.step_scale not in STEP_SCALES:
            raise ConfigError(f"step_scale must be one of {STEP_SCALES}, got {self.step_scale!r}")
        if not self.scale_floor_px > 0:
            raise ConfigError(f"scale_floor_px must be > 0, got {self.scale_floor_px}")
        if self.candidates > 1 and not self.critic:
            raise ConfigError(f"candidates ({self.candidates}) > 1 needs critic=true: the critic chooses among them")
        at_least(self, 0, ("max_press_jump_px", "max_step_speed"))
        for name in ("temperature", "dt_temperature", "sigma_temperature"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass
class ARMDNTrain(TrainConfig):
    """Teacher-forced maximum likelihood: Adam, gradient clipping, one phase ``fit`` of ar_iterations."""

    lr: float = 2e-3
    ar_iterations: int = 28000  # half as many: disc_timegan 0.153–0.162 against 0.129–0.141 (SapiMouse)
    lr_schedule: str = "cosine"
    log_interval: int = 1000
    eval_interval: int = 7000
    dequantize: bool = True  # add U(-½, ½) px to each training step: a density of integer steps, not spikes
    eval_samples: int = 500  # validation movements generated at each evaluation
    eval_nll_movements: int = 2000  # validation movements whose NLL is measured
    # Phase ``critic`` (with critic=true): critic_movements training movements against as many of the fitted
    # model's own, drawn to their end points; Adam, balanced batches of critic_batch_size per class.
    critic_iterations: int = 1500
    critic_movements: int = 8000
    critic_batch_size: int = 64
    critic_lr: float = 2e-3
    # Phase ``adversarial`` (adv_iterations > 0, needs critic=true; see adversarial.py): policy gradient on the
    # critic's logit over adv_groups end points × adv_candidates own movements, a KL penalty of weight adv_kl to
    # the fitted model, the likelihood of people's movements; adv_critic_lr > 0 keeps training the critic.
    adv_iterations: int = 0
    adv_lr: float = 1e-4
    adv_groups: int = 32
    adv_candidates: int = 4
    adv_kl: float = 1.0
    adv_critic_lr: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        at_least(self, 1, ("ar_iterations", "eval_samples", "eval_nll_movements", "critic_iterations",
                           "critic_batch_size"))
        at_least(self, 10, ("critic_movements",))
        at_least(self, 0, ("adv_iterations",))
        at_least(self, 1, ("adv_groups",))
        at_least(self, 2, ("adv_candidates",))
        for name in ("critic_lr", "adv_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        at_least(self, 0, ("adv_kl", "adv_critic_lr"))


# Presets: differences from the defaults, in architecture and training keys alike.
PRESETS: dict[str, dict] = {
    "default": {},
    # The README's main job (embedded data, 500 test movements): at 3,000 iterations (lr 2e-3) 74 % of the movements
    # ran to the 100-point cap; 8,000 at lr 4e-3: 13 %, 36 points and 870 ms at the median (people: 33, 793 ms).
    "fast": dict(ar_iterations=8000, lr=4e-3, eval_interval=2000, save_interval=2000),
    # For tests: seconds, not minutes.
    "tiny": dict(hidden_dim=16, head_dim=16, dt_embed_dim=4, n_components=3, heading_components=1,
                 screen_components=1, grid_radius=1, dt_exact_ms=32, dt_log_buckets=4, n_angle_bins=8, n_plan_bins=4,
                 plan_records=32, ar_iterations=20, batch_size=16, log_interval=5, eval_interval=10,
                 save_interval=10, eval_samples=50, eval_nll_movements=64, critic_hidden=8, critic_layers=1,
                 critic_iterations=10, critic_movements=60, critic_batch_size=8),
}
