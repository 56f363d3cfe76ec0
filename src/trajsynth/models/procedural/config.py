"""Configuration of the procedural (non-neural, fitted) movement model.

Every field is a plain JSON-able value. The fields that size fitted tables
(``n_distance_bins``, ``records_per_bin``, ``dt_max_ms``) fix the shapes of the
model's buffers, so a saved state dict only loads into a model built from the
same values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config import ConfigError, at_least


@dataclass
class ProceduralConfig:
    """Table sizes, shape constants and fitting options of :class:`~.model.ProceduralModel`."""

    # Output format, shared with every family.
    max_seq_len: int = 100  # most points per movement; longer ones are thinned evenly, ends kept
    feature_dim: int = 8  # the 8-feature trajectory format (fixed)
    condition_dim: int = 1  # the condition is the normalised start-to-end distance (fixed)
    # Fitted tables.
    fitts_width_px: float = 20.0  # nominal target width W of the Fitts fit, MT = a + b·log2(1 + D/W)
    n_distance_bins: int = 12  # equal-count bins of log distance for the per-movement parameter records
    records_per_bin: int = 512  # parameter records kept per bin (drawn with replacement when a bin has fewer)
    dt_max_ms: int = 1000  # the interval histogram covers 1..dt_max_ms ms (longer ones count as dt_max_ms)
    max_submovements: int = 6  # most submovements of one movement (primary + corrections)
    # Shape constants, not fitted: the defaults gave the lowest kinematic-detector accuracy among the values
    # tried on the SapiMouse training split.
    correction_gain: float = 0.3  # error left after each intermediate correction, relative to the one before
    correction_speed: float = 0.5  # mean speed of a corrective bump, relative to the primary's
    correction_drift: float = 0.5  # share of each correction covered at a steady speed over its whole slot
    direction_jitter_deg: float = 2.5  # uniform spread added to a record's direction, ± degrees
    # Fitting.
    # Simulated-moment fits: with ``calibrate``, speed_wobble is fitted so simulated training movements have the
    # real median jerk, then jitter_px so they have the real median curvature; used as they are otherwise.
    calibrate: bool = True
    speed_wobble: float = 0.0  # amplitude (< 1) of the smooth random fluctuation of the speed
    wobble_period_ms: list[float] = field(default_factory=lambda: [80.0, 400.0])  # range of its periods
    jitter_px: float = 0.0  # σ of the Gaussian lateral jitter on interior motion events (px)
    calibration_movements: int = 2000  # training movements simulated per calibration step
    fit_seed: int = 0  # seed of the record subsampling and of the calibration draws

    def __post_init__(self) -> None:
        if self.feature_dim != 8:
            raise ConfigError(f"feature_dim must be 8 (the trajectory format), got {self.feature_dim}")
        if self.condition_dim != 1:
            raise ConfigError(f"condition_dim must be 1 (the distance), got {self.condition_dim}")
        minimum = {"max_seq_len": 3, "n_distance_bins": 1, "records_per_bin": 1, "dt_max_ms": 2,
                   "max_submovements": 1, "calibration_movements": 10}
        for name, low in minimum.items():
            at_least(self, low, (name,))
        if not self.fitts_width_px > 0:
            raise ConfigError(f"fitts_width_px must be > 0, got {self.fitts_width_px}")
        if not 0 <= self.correction_gain < 1:
            raise ConfigError(f"correction_gain must be in [0, 1), got {self.correction_gain}")
        if not self.correction_speed > 0:
            raise ConfigError(f"correction_speed must be > 0, got {self.correction_speed}")
        if not 0 <= self.speed_wobble < 1:
            raise ConfigError(f"speed_wobble must be in [0, 1), got {self.speed_wobble}")
        if len(self.wobble_period_ms) != 2 or not 0 < self.wobble_period_ms[0] <= self.wobble_period_ms[1]:
            raise ConfigError(f"wobble_period_ms must be [shortest, longest] with 0 < shortest <= longest, "
                              f"got {self.wobble_period_ms}")
        at_least(self, 0, ("jitter_px",))
        if not 0 <= self.correction_drift <= 1:
            raise ConfigError(f"correction_drift must be in [0, 1], got {self.correction_drift}")
        if not 0 <= self.fit_seed < 2**32:
            raise ConfigError(f"fit_seed must be in [0, 2**32), got {self.fit_seed}")
        if not 0 <= self.direction_jitter_deg <= 180:
            raise ConfigError(f"direction_jitter_deg must be in [0, 180], got {self.direction_jitter_deg}")
