"""The procedural movement model: minimum-jerk submovements with every constant fitted to data.

Generation of one movement of requested distance D:

1. **Record.** A per-movement parameter record (see :mod:`.fit`) is drawn from the
   training movements of D's distance bin (equal-count bins of log distance): motion-time
   ratio, first and last waits, direction, submovement count, primary submovement (start,
   end, reach, perpendicular offset), overshoot, lateral curvature. Drawing whole records
   keeps their dependencies. The direction gets ± ``direction_jitter_deg`` of uniform spread.
2. **Timing.** Motion time (first to last motion event) = a + b·log2(1 + D/W), the Shannon
   form of Fitts's law fitted by least squares on the training motion phases with the
   nominal width W = ``fitts_width_px``, times the record's ratio to that prediction: the
   residual spread is the empirical one of the distance bin.
3. **Event clock.** Point 0 is the release at t = 0; the first motion event comes after the
   record's first wait; further events follow intervals drawn from the training histogram
   of motion intervals (integer ms), and the last motion event is the one nearest the
   motion time; the press follows it after the record's last wait.
4. **Along the axis** the cursor follows a sum of steps: a steady pre-movement to
   ``pre_reach``·D, the minimum-jerk primary to ``primary_reach``·D between
   ``primary_start`` and ``primary_end``, then the corrections (submovements − 1, at least
   one) in equal slots of the remaining time, each leaving ``correction_gain`` of the error
   before it (a recorded overshoot is reproduced at the primary or the first correction);
   each correction is part steady drift over its slot, part minimum-jerk bump at
   ``correction_speed`` times the primary's mean speed, and the last lands on the target as
   the motion ends. A smooth random time warp (amplitude ``speed_wobble``, fitted) makes
   the speed fluctuate as a hand's does.
5. **Across the axis** the corrections remove the primary's perpendicular offset by the
   same ratios, and a minimum-jerk bump over the along-axis progress peaks at ``lateral``·D
   (the path's curvature); Gaussian jitter (σ ``jitter_px``, fitted) is added to interior events.
6. **Pixels.** Positions are rounded to integers; the first motion event is at least 1 px
   from the start (a logger reports nothing before the cursor leaves its pixel). The
   target is D along the drawn direction rounded to the nearest pixel, so the end distance
   is within √2/2 px of D; the last motion event and the press are both placed on it.
7. **Length.** L = motion events + 2. When L exceeds ``max_seq_len``, the movement is
   thinned to ``max_seq_len`` evenly spaced points keeping both ends, the rule of the
   preprocessing's ``resample`` policy; its intervals are then sums of drawn ones.

``speed_wobble`` and ``jitter_px`` are fitted by simulated moments (the median jerk and
curvature of simulated training movements match the real ones); the other fitted
quantities are measured directly. All randomness comes from the ``torch.Generator`` given
to :meth:`ProceduralModel.generate`, and all arithmetic is vectorised over the movements.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ...data.features import NormalizationParams, paths_to_features
from ...metrics.kinematics import OVERSHOOT_FRAC, OVERSHOOT_PX, kinematic_features
from . import fit as measure
from .config import ProceduralConfig

NORM_FIELDS = tuple(f.name for f in dataclasses.fields(NormalizationParams))
FIELD = {name: i for i, name in enumerate(measure.RECORD_FIELDS)}
CLOCK_BLOCK = 64  # intervals drawn per block while some movement's motion time is not yet covered
JITTER_BRACKET_PX = (0.0, 4.0)  # search range of the jitter calibration
WOBBLE_BRACKET = (0.0, 0.95)  # search range of the speed-wobble calibration (< 1 keeps the progress rising)
WOBBLE_WAVES = 3  # sinusoids summed into the speed wobble
BISECTION_STEPS = 10  # the calibration narrows its bracket 2^10 times


def min_jerk(x: torch.Tensor) -> torch.Tensor:
    """Minimum-jerk progress 10x³ − 15x⁴ + 6x⁵ on x in [0, 1] (Flash & Hogan 1985)."""
    return x * x * x * (10 + x * (-15 + 6 * x))


def _ramp(u: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Minimum-jerk step from 0 at ``start`` to 1 at ``end`` (broadcast); a zero-length step is a jump."""
    return min_jerk(((u - start) / (end - start).clamp_min(1e-9)).clamp(0.0, 1.0))


class ProceduralModel(nn.Module):
    """Fitted non-neural baseline; every fitted number is a buffer (see the module docstring)."""

    integer_paths = True  # paths are whole pixels and milliseconds, as a logger records them

    def __init__(self, cfg: ProceduralConfig):
        super().__init__()
        self.cfg = cfg
        f64 = dict(dtype=torch.float64)
        self.register_buffer("norm", torch.zeros(len(NORM_FIELDS), **f64))  # NormalizationParams values
        self.register_buffer("fitts", torch.zeros(2, **f64))  # (a ms, b ms/bit) of the motion phase
        self.register_buffer("bin_edges", torch.zeros(cfg.n_distance_bins + 1, **f64))  # log px
        self.register_buffer("records", torch.zeros(cfg.n_distance_bins, cfg.records_per_bin,
                                                    len(measure.RECORD_FIELDS), **f64))
        self.register_buffer("dt_hist", torch.zeros(cfg.dt_max_ms, **f64))  # counts of 1 … dt_max_ms ms
        self.register_buffer("jitter_px", torch.zeros((), **f64))  # σ of the lateral jitter
        self.register_buffer("speed_wobble", torch.zeros((), **f64))  # amplitude of the speed fluctuation
        self.register_buffer("max_motion_ms", torch.zeros((), **f64))  # longest training motion phase
        self.register_buffer("is_fitted", torch.zeros((), dtype=torch.bool))

    @property
    def fitted(self) -> bool:
        return bool(self.is_fitted)

    @property
    def params(self) -> NormalizationParams:
        """The data's scaling constants, as saved in the buffers."""
        values = self.norm.tolist()
        return NormalizationParams(**{k: (int(v) if k == "format_version" else v)
                                      for k, v in zip(NORM_FIELDS, values, strict=True)})

    # ----------------------------------------------------------------- fitting
    def fit(self, paths: list[np.ndarray], conditions: np.ndarray, params: NormalizationParams) -> dict[str, float]:
        """Fit every buffer from the training movements (paths as in SplitArrays.path, conditions (N,) or (N,1)
        normalised); returns a few fitted figures for the log (Fitts a, b, overshoot rate, ...)."""
        cond = np.asarray(conditions, np.float64).reshape(-1)  # (N,)
        if len(cond) != len(paths):
            raise ValueError(f"{len(paths)} movements but {len(cond)} conditions")
        P, L = measure.padded_paths(paths)
        table, distance, (a, b) = measure.movement_records(P, L, self.cfg.fitts_width_px, self.cfg.max_submovements)
        rng = np.random.default_rng(self.cfg.fit_seed)
        edges, records = measure.bin_records(distance, table, self.cfg.n_distance_bins, self.cfg.records_per_bin, rng)
        rows = np.arange(len(L))
        values = [float(params.to_dict()[k]) for k in NORM_FIELDS]
        with torch.no_grad():
            for name, value in (("norm", values), ("fitts", [a, b]), ("bin_edges", edges), ("records", records),
                                ("dt_hist", measure.interval_histogram(P, L, self.cfg.dt_max_ms)),
                                ("max_motion_ms", (P[rows, L - 2, 0] - P[:, 1, 0]).max()),
                                ("jitter_px", self.cfg.jitter_px), ("speed_wobble", self.cfg.speed_wobble)):
                getattr(self, name).copy_(torch.as_tensor(np.asarray(value), dtype=torch.float64))
            self.is_fitted.fill_(True)
            if self.cfg.calibrate:
                self._calibrate(P, L, cond, rng)
        return self._figures(table, distance)

    def _figures(self, table: np.ndarray, distance: np.ndarray) -> dict[str, float]:
        """Fitted figures for the log; the overshoot rate counts as the kinematic metrics do."""
        a, b = self.fitts.tolist()
        overshoot = table[:, FIELD["overshoot"]] * distance > np.maximum(OVERSHOOT_PX, OVERSHOOT_FRAC * distance)
        return {
            "fitts_a_ms": a, "fitts_b_ms_per_bit": b, "movements": float(len(table)),
            "submovements_mean": float(table[:, FIELD["submovements"]].mean()),
            "overshoot_rate": float(overshoot.mean()),
            "lateral_abs_median": float(np.median(np.abs(table[:, FIELD["lateral"]]))),
            "motion_interval_median_ms": float(torch.searchsorted(self.dt_hist.cumsum(0), self.dt_hist.sum() / 2)) + 1,
            "jitter_px": float(self.jitter_px), "speed_wobble": float(self.speed_wobble),
        }

    def _calibrate(self, P: np.ndarray, L: np.ndarray, cond: np.ndarray, rng: np.random.Generator) -> None:
        """Simulated-moment fits on a subsample of training movements (fixed generator draws).

        speed_wobble first: the median mean |jerk| rises with it; then jitter_px: the median
        curvature rises with it. Each is set where the simulated statistic meets the real one.
        """
        pick = rng.permutation(len(L))[: self.cfg.calibration_movements]
        real = kinematic_features([P[i, : L[i]] for i in pick])
        conditions = torch.as_tensor(cond[pick]).reshape(-1, 1)

        def simulated(name: str) -> Callable[[], float]:
            gen = lambda: self.generate_paths(len(pick), conditions, torch.Generator().manual_seed(self.cfg.fit_seed))
            return lambda: float(np.median(kinematic_features(gen())[name]))

        for buffer, bracket, name in ((self.speed_wobble, WOBBLE_BRACKET, "mean_abs_jerk"),
                                      (self.jitter_px, JITTER_BRACKET_PX, "mean_curvature")):
            self._bisect(buffer, bracket, simulated(name), float(np.median(real[name])))

    @staticmethod
    def _bisect(buffer: torch.Tensor, bracket: tuple[float, float], statistic: Callable[[], float],
                target: float) -> None:
        """Set the 0-dim ``buffer`` where the increasing ``statistic`` meets ``target`` (or at a bracket end)."""
        lo, hi = bracket
        buffer.fill_(lo)
        if statistic() >= target:  # the rest of the model already reaches it: the fitted value is the lower end
            return
        for _ in range(BISECTION_STEPS):
            buffer.fill_((lo + hi) / 2)
            if statistic() > target:
                hi = (lo + hi) / 2
            else:
                lo = (lo + hi) / 2
        buffer.fill_((lo + hi) / 2)

    # ----------------------------------------------------------------- generation
    @torch.no_grad()
    def generate(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """conditions (n, 1) normalised distances → X (n, max_seq_len, 8) float32 zero past each length, L (n,) int64.
        X is paths_to_features of the generated integer-pixel path, so features_to_paths(X, C, L, params) gives it back.

        dx, dy are scaled by the requested distance (the one the condition encodes), so inverting
        with the requested conditions returns the integer path itself.
        """
        P, L, distance = self._sample(n, conditions, rng)
        paths = [P[i, :k] for i, k in enumerate(L)]
        X, _, _ = paths_to_features(paths, self.cfg.max_seq_len, self.params)
        valid = np.arange(self.cfg.max_seq_len)[None, :] < L[:, None]  # (n, T)
        pos = (2 / np.pi) * np.arctan(P[:, :, 1:] / distance[:, None, None])  # (n, T, 2)
        X[..., :2] = np.where(valid[..., None], pos, 0.0)
        return torch.from_numpy(X), torch.from_numpy(L)

    @torch.no_grad()
    def generate_paths(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None = None
                       ) -> list[np.ndarray]:
        """The (L_i, 3) integer-pixel paths (t_ms, x_px, y_px) from (0, 0, 0) that :meth:`generate` encodes."""
        P, L, _ = self._sample(n, conditions, rng)
        return [P[i, :k] for i, k in enumerate(L)]

    def _sample(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Padded paths P (n, T, 3) float64, lengths L (n,) int64 and requested distances (n,) px."""
        if not self.fitted:
            raise RuntimeError("ProceduralModel.generate called before fit(): fit it on training movements "
                               "or load a fitted state_dict first")
        c = torch.as_tensor(conditions, dtype=torch.float64).reshape(-1)  # (n,)
        if len(c) != n:
            raise ValueError(f"generate(n={n}) needs n conditions of shape (n, 1), got {tuple(conditions.shape)}")
        c = c.clamp(-1.0, 1.0)  # distances outside the data's range are brought to its ends
        distance = self._distance(c)
        rec = self._draw_records(distance, rng)  # (n, F)
        angle = rec[:, FIELD["angle"]] + self._uniform((n,), rng) * math.radians(self.cfg.direction_jitter_deg)
        motion = (self._fitts_ms(distance) * rec[:, FIELD["motion_ratio"]]).clamp(0.0, float(self.max_motion_ms))
        offsets, last = self._clock(motion, rng)  # (n, S) ms after the first motion event, (n,) last event index
        progress = self._wobble(self._progress(offsets, last), offsets, rng)  # (n, S)
        along, across = self._path(progress, distance, rec)
        jitter = self.jitter_px * torch.randn(along.shape, generator=rng, dtype=torch.float64)
        jitter[:, 0] = 0.0  # the first event stays on the axis, about 1 px from the start
        across = across + jitter
        xy = self._to_pixels(along, across, angle, distance, last)  # (n, S, 2), target from `last` on
        times = rec[:, FIELD["first_ms"], None] + offsets  # (n, S)
        P, L = self._assemble(times, xy, last, rec[:, FIELD["last_ms"]])
        P, L = self._thin(P, L)
        return P.numpy(), L.numpy(), distance.numpy()

    def _uniform(self, shape: tuple[int, ...], rng: torch.Generator | None) -> torch.Tensor:
        """Uniform draws in [-1, 1)."""
        return 2 * torch.rand(shape, generator=rng, dtype=torch.float64) - 1

    def _distance(self, c: torch.Tensor) -> torch.Tensor:
        """Normalised condition (n,) → distance (n,) px, as features.condition_to_distance."""
        lo, hi = (math.log(float(self.norm[NORM_FIELDS.index(k)])) for k in ("d_min", "d_max"))
        return torch.exp(lo + (c + 1) / 2 * (hi - lo))

    def _fitts_ms(self, distance: torch.Tensor) -> torch.Tensor:
        a, b = self.fitts.tolist()
        return (a + b * torch.log2(1 + distance / self.cfg.fitts_width_px)).clamp_min(1.0)

    def _draw_records(self, distance: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
        """One record (n, F) per movement, uniformly among those of its distance bin."""
        bins = torch.searchsorted(self.bin_edges[1:-1].contiguous(), distance.log().contiguous())  # (n,)
        pick = torch.randint(self.cfg.records_per_bin, (len(distance),), generator=rng)
        return self.records[bins, pick]

    def _clock(self, motion: torch.Tensor, rng: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Motion-event times (n, S) ms after the first event, and the index (n,) of the last one.

        The last event is the one nearest the motion time, so the clock does not lengthen
        movements on average; blocks of intervals are drawn until every movement's clock
        passes its motion time. Entries past the last event are meaningless and get replaced.
        """
        cdf = (self.dt_hist.cumsum(0) / self.dt_hist.sum()).contiguous()  # (dt_max,)
        offsets = torch.zeros(len(motion), 1, dtype=torch.float64)
        while bool((offsets[:, -1] < motion).any()):
            u = torch.rand(len(motion), CLOCK_BLOCK, generator=rng, dtype=torch.float64)
            dt = (torch.searchsorted(cdf, u, right=True).clamp_max(len(cdf) - 1) + 1).to(torch.float64)
            offsets = torch.cat([offsets, offsets[:, -1:] + dt.cumsum(1)], dim=1)
        after = (offsets < motion[:, None]).sum(1)  # (n,) first event at or past the motion time
        rows, before = torch.arange(len(motion)), (after - 1).clamp_min(0)
        closer = motion - offsets[rows, before] < offsets[rows, after] - motion
        last = torch.where(closer, before, after)
        return offsets[:, : int(last.max()) + 1], last

    def _progress(self, offsets: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """Share u (n, S) of the motion at each motion event: 0 at the first, 1 from the last one on."""
        span = offsets[torch.arange(len(last)), last]  # (n,) time of the last motion event
        u = offsets / span.clamp_min(1e-9)[:, None]
        k = torch.arange(offsets.shape[1])[None, :]
        return torch.where(k >= last[:, None], 1.0, u.clamp_max(1.0))

    def _wobble(self, u: torch.Tensor, offsets: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
        """Time-warp the progress (n, S) so the speed fluctuates smoothly; ends and monotonicity kept.

        Each increment of u is scaled by 1 + A·ξ(t), ξ the mean of WOBBLE_WAVES sinusoids with
        periods drawn in ``wobble_period_ms`` and random phases (|ξ| <= 1, so A < 1 keeps the
        progress rising), and the sum is rescaled to end at 1. A = ``speed_wobble``.
        """
        n = len(u)
        lo, hi = self.cfg.wobble_period_ms
        period = lo + (hi - lo) * torch.rand(n, 1, WOBBLE_WAVES, generator=rng, dtype=torch.float64)
        phase = 2 * math.pi * torch.rand(n, 1, WOBBLE_WAVES, generator=rng, dtype=torch.float64)
        xi = torch.sin(2 * math.pi * offsets[..., None] / period + phase).mean(-1)  # (n, S)
        du = torch.diff(u, dim=1, prepend=torch.zeros_like(u[:, :1])) * (1 + self.speed_wobble * xi)
        total = du.sum(1, keepdim=True)
        return torch.where(total > 0, du.cumsum(1) / total.clamp_min(1e-12), u)

    def _levels(self, rec: torch.Tensor, distance: torch.Tensor, corrections: torch.Tensor) -> torch.Tensor:
        """Along-axis landing point (n, J) of each step, relative to D; 1 for the last correction and after.

        Corrections close the remaining error geometrically (``correction_gain``). A recorded
        overshoot beyond the primary's reach is placed at the first correction (or at the
        primary when it has a single one), so the movement overshoots as often and as far.
        """
        j = torch.arange(2 + max(self.cfg.max_submovements - 1, 1), dtype=torch.float64)[None, :]  # (1, J)
        reach, peak = rec[:, FIELD["primary_reach"], None], 1 + rec[:, FIELD["overshoot"], None]  # (n, 1)
        tol = torch.clamp(OVERSHOOT_PX / distance[:, None], min=OVERSHOOT_FRAC)  # as the kinematic metrics count
        late = (peak - 1 > tol) & (reach < peak - tol)  # overshoot after the primary
        reach = torch.where(late & (corrections == 1), peak, reach)
        base = torch.where(late & (corrections >= 2), peak, reach)
        first = torch.where(late & (corrections >= 2), 1.0, 0.0)  # index of the correction landing on `base`
        level = 1 + (base - 1) * self.cfg.correction_gain ** (j - 1 - first).clamp_min(0)
        level = torch.where(j == 0, rec[:, FIELD["pre_reach"], None], torch.where(j == 1, reach, level))
        return torch.where(j >= 1 + corrections, 1.0, level)

    def _step_times(self, rec: torch.Tensor, level: torch.Tensor, corrections: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Start of the bump, start of the slot and common end (n, J) of each step, as shares of the motion time.

        The pre-movement runs up to the primary's start and the primary as recorded. The
        corrections split the rest into equal slots that end together with their bumps; a
        bump moves at ``correction_speed`` times the primary's mean speed, so it is shorter
        than its slot (the last one lands on the target as the motion ends). A record with
        one submovement gets one correction anyway, the slow homing onto the target, whose
        bump fills its slot.
        """
        s1, e1 = rec[:, FIELD["primary_start"], None], rec[:, FIELD["primary_end"], None]  # (n, 1)
        primary_speed = (level[:, 1:2] - level[:, :1]).clamp_min(0.05) / (e1 - s1)  # D per motion time
        j = torch.arange(level.shape[1], dtype=torch.float64)[None, :]  # (1, J)
        slot = (1 - e1) / corrections
        slot_end = e1 + (j - 1) * slot
        moving = (level - torch.cat([level[:, :1], level[:, :-1]], dim=1)).abs() / (self.cfg.correction_speed
                                                                                 * primary_speed)
        homing = rec[:, FIELD["submovements"], None].round() <= 1
        duration = torch.where(homing, slot, torch.minimum(moving, slot))
        pre_start = s1.clamp_max(0.0)
        bump_start = torch.where(j == 0, pre_start, torch.where(j == 1, s1, slot_end - duration))
        slot_start = torch.where(j == 0, pre_start, torch.where(j == 1, s1, slot_end - slot))
        end = torch.where(j == 0, s1, torch.where(j == 1, e1, slot_end))
        return bump_start, slot_start, end

    def _steps(self, u: torch.Tensor, distance: torch.Tensor, rec: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Progress (n, S, J) of each step at each event, and the along / perpendicular distance (n, J) px it covers.

        Each step is split between a steady drift over its slot (all of the pre-movement,
        ``correction_drift`` of each correction, none of the primary) and a minimum-jerk bump:
        a hand homing in on a target keeps moving between its corrective bursts. The
        corrections remove the primary's perpendicular offset by the same ratios as its
        along-axis error.
        """
        corrections = (rec[:, FIELD["submovements"], None].round() - 1).clamp_min(1)  # (n, 1)
        level = self._levels(rec, distance, corrections)  # (n, J)
        bump_start, slot_start, end = (x[:, None, :] for x in self._step_times(rec, level, corrections))
        j = torch.arange(level.shape[1])[None, :]  # (1, J)
        offset = rec[:, FIELD["primary_offset"], None] * self.cfg.correction_gain ** (j - 1).clamp_min(0)
        offset = torch.where((j == 0) | (j >= 1 + corrections), 0.0, offset)
        previous = lambda v: torch.cat([torch.zeros_like(v[:, :1]), v[:, :-1]], dim=1)
        along, across = ((v - previous(v)) * distance[:, None] for v in (level, offset))
        drift = torch.where(j == 0, 1.0, torch.where(j == 1, 0.0, self.cfg.correction_drift))[:, None, :]
        x = u[..., None]  # (n, S, 1)
        steady = ((x - slot_start) / (end - slot_start).clamp_min(1e-9)).clamp(0.0, 1.0)
        return drift * steady + (1 - drift) * _ramp(x, bump_start, end), along, across

    def _bump(self, along: torch.Tensor, distance: torch.Tensor, rec: torch.Tensor) -> torch.Tensor:
        """Perpendicular bump (n, S) px over the along-axis progress, lateral·D at lateral_at, 0 at both ends.

        Tied to the progress rather than the clock, the path keeps its shape whatever the timing.
        """
        peak = rec[:, FIELD["lateral_at"], None]  # (n, 1)
        progress = along / distance[:, None]
        bump = _ramp(progress, torch.zeros_like(peak), peak) - _ramp(progress, peak, torch.ones_like(peak))
        return (rec[:, FIELD["lateral"]] * distance)[:, None] * bump

    def _path(self, u: torch.Tensor, distance: torch.Tensor, rec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Along-axis and perpendicular positions (n, S) px, before jitter."""
        shape, along_steps, across_steps = self._steps(u, distance, rec)
        along = (along_steps[:, None, :] * shape).sum(-1)
        across = (across_steps[:, None, :] * shape).sum(-1) + self._bump(along, distance, rec)
        return along, across

    def _to_pixels(self, along: torch.Tensor, across: torch.Tensor, angle: torch.Tensor, distance: torch.Tensor,
                   last: torch.Tensor) -> torch.Tensor:
        """Rotate into screen axes and round (n, S, 2); events from `last` on are the target."""
        cos, sin = angle.cos()[:, None], angle.sin()[:, None]
        k = torch.arange(along.shape[1])[None, :]
        xy = torch.stack([along * cos - across * sin, along * sin + across * cos], dim=-1).round()  # (n, S, 2)
        # A logger reports the first event only once the cursor has left its pixel.
        nudge = torch.stack([cos[:, 0], sin[:, 0]], dim=-1).round()  # (n, 2) one pixel along the axis
        still = (xy[:, 0] == 0).all(-1, keepdim=True)
        xy[:, 0] = torch.where(still, nudge, xy[:, 0])
        target = torch.stack([distance * angle.cos(), distance * angle.sin()], dim=-1).round()  # (n, 2)
        return torch.where((k >= last[:, None])[..., None], target[:, None, :], xy)

    def _assemble(self, times: torch.Tensor, xy: torch.Tensor, last: torch.Tensor, last_ms: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """Release (origin, t 0) + motion events + press (n, S+2, 3), padded with the press; lengths (n,)."""
        n = len(last)
        rows = torch.arange(n)
        press_t = times[rows, last] + last_ms  # (n,)
        k = torch.arange(times.shape[1] + 1)[None, :]  # index into the points after the release
        t = torch.where(k <= last[:, None], torch.cat([times, times[:, -1:]], 1), press_t[:, None])
        pos = torch.cat([xy, xy[:, -1:]], 1)  # events past `last` already hold the target
        body = torch.cat([t[..., None], pos], dim=-1)  # (n, S+1, 3)
        P = torch.cat([torch.zeros(n, 1, 3, dtype=torch.float64), body], dim=1)
        return P, last + 3

    def _thin(self, P: torch.Tensor, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Movements over max_seq_len points keep round(linspace(0, L-1, T)); all are padded to T points."""
        T = self.cfg.max_seq_len
        j = torch.arange(T, dtype=torch.float64)[None, :]
        spread = torch.round(j * (L[:, None] - 1).to(torch.float64) / (T - 1)).long()  # (n, T)
        idx = torch.where((L > T)[:, None], spread, torch.minimum(j.long(), (L - 1)[:, None]))
        if P.shape[1] < T:  # gather needs the source as long as the index range; pad with the last point
            P = torch.cat([P, P[:, -1:].expand(-1, T - P.shape[1], -1)], dim=1)
        return torch.gather(P, 1, idx[..., None].expand(-1, -1, 3)), L.clamp_max(T)

