"""The logger's event clock, and rendering of continuous paths onto it (whole pixels, whole milliseconds).

A browser or desktop logger does not sample the cursor at arbitrary times. It reports a move on its
own frame clock (SapiMouse: mostly 16 / 17 ms, a minority of movements at 8 / 9 ms, i.e. 120 Hz
screens), in whole pixels and whole milliseconds, and only when the pixel under the cursor has
changed: a slow cursor yields longer intervals, a still one none at all. A model that decodes smooth
mean trajectories with continuous intervals (the two-stage model) misses all of that, and a
classifier sees it within a few steps.

:class:`EventClock` is fitted on the training paths: each movement's frame interval is the median of
its motion intervals; movements are grouped by it (one group per clock rate), and each group keeps
the histogram of its short intervals (the frames; long ones come from still cursors, which rendering
reproduces by itself). :meth:`EventClock.render` then logs a continuous path as such a logger would:
it draws one clock group per movement and frame ticks from it, reads the path at each tick, rounds to
whole pixels, and keeps a tick only if the pixel changed (plus the small fraction of still reports
the data has). The waits around the motion (the reaction after the release, with the still report
a browser often sends first, and the dwell before the press) are drawn whole from one training
movement, since a decoder regresses them to their mean; the press is reported where the cursor came
to rest, on the movement's end point, as a real logger reports it.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

MAX_WAITS = 1024  # training movements whose waits a clock keeps (whole ms: a few kB in a checkpoint)
MIN_GROUP_SHARE = 0.01  # clock groups rarer than this are merged into the nearest common one
RATE_TOLERANCE = 2  # ms: movement medians this close belong to one clock rate
FRAME_FACTOR = 1.5  # intervals up to this multiple of a movement's median are frames, longer ones pauses
# frames within this many ms of the most common interval set a clock's period and jitter (not the stragglers:
# a half frame or a late one)
GRID_CORE_MS = 2


@dataclass(frozen=True)
class EventClock:
    """Clock groups of the training movements: their shares and frame-interval histograms (1 … K ms)."""

    group_ms: np.ndarray  # (G,) median frame interval of each group, ms
    group_p: np.ndarray  # (G,) share of movements on each clock
    tick_p: np.ndarray  # (G, K) probability of a frame interval of 1 … K ms, per group
    still_p: float  # share of motion events that report an unchanged position
    # the waits of training movements, drawn whole (None: the generated times are kept): per movement the time
    # of a still report before the cursor first moves (-1: none) and of its first moving report (M, 2), and
    # the wait before the press (M,)
    lead_ms: np.ndarray | None = None
    press_ms: np.ndarray | None = None

    @classmethod
    def fit(cls, paths: list[np.ndarray]) -> EventClock:
        """Fit on real paths (each (n, 3): t_ms, x_px, y_px); movements of fewer than 4 points are skipped."""
        med, frames, waits, still, motion = [], [], [], 0, 0
        for p in paths:
            if len(p) < 4:
                continue
            p = np.round(p)
            waits.append(_waits_of(p))
            dt = np.diff(p[:, 0])[1:-1]  # (n-3,) motion intervals: first report → last move
            moved = np.any(np.diff(p[:, 1:], axis=0)[1:-1] != 0, axis=1)
            m = float(np.median(dt))
            med.append(m), frames.append(dt[(dt >= 1) & (dt <= FRAME_FACTOR * m)])
            still, motion = still + int((~moved).sum()), motion + len(moved)
        if not med:
            raise ValueError("an event clock needs movements of at least 4 points; none were given")
        clock = cls._from_groups(np.round(med).astype(int), frames, still / max(motion, 1))
        keep = np.random.default_rng(0).permutation(len(waits))[:MAX_WAITS]  # a bounded sample for checkpoints
        w = np.asarray(waits, float)[np.sort(keep)]  # (M, 3)
        return dataclasses.replace(clock, lead_ms=w[:, :2], press_ms=w[:, 2])

    @classmethod
    def _from_groups(cls, med: np.ndarray, frames: list[np.ndarray], still_p: float) -> EventClock:
        keys, counts = np.unique(med, return_counts=True)
        common = _rates(keys[counts >= MIN_GROUP_SHARE * len(med)], counts[counts >= MIN_GROUP_SHARE * len(med)])
        if len(common) == 0:
            common = keys[[np.argmax(counts)]]
        # nearest common clock for every movement (rare medians come from short or irregular movements)
        group = np.abs(med[:, None] - common[None, :]).argmin(axis=1)  # (N,)
        K = max(1, int(max((f.max() for f in frames if len(f)), default=1)))
        tick = np.zeros((len(common), K))
        for g, f in zip(group, frames, strict=True):
            np.add.at(tick[g], f.astype(int) - 1, 1.0)
        for g in range(len(common)):  # a group without short intervals ticks at its own median
            if tick[g].sum() == 0:
                tick[g, min(int(common[g]), K) - 1] = 1.0
        share = np.bincount(group, minlength=len(common)).astype(float)
        return cls(common.astype(float), share / share.sum(), tick / tick.sum(1, keepdims=True), float(still_p))

    def to_dict(self) -> dict:
        d = {"group_ms": self.group_ms.tolist(), "group_p": self.group_p.tolist(),
             "tick_p": self.tick_p.tolist(), "still_p": self.still_p}
        if self.lead_ms is not None:  # whole ms, stored as ints: small checkpoints
            d.update(lead_ms=np.round(self.lead_ms).astype(int).tolist(),
                     press_ms=np.round(self.press_ms).astype(int).tolist())
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EventClock:
        """The clock a checkpoint recorded; ValueError (or KeyError / TypeError) for one that is malformed."""
        waits = {k: np.asarray(d[k], float) for k in ("lead_ms", "press_ms") if k in d}  # older clocks: none
        clock = cls(np.asarray(d["group_ms"], float), np.asarray(d["group_p"], float),
                    np.asarray(d["tick_p"], float), float(d["still_p"]), **waits)
        clock.check()
        return clock

    def check(self) -> None:
        """ValueError unless the tables fit together and hold probabilities and waits."""
        G = len(self.group_ms)
        shapes_ok = G > 0 and self.group_p.shape == (G,) and self.tick_p.ndim == 2 and self.tick_p.shape[0] == G
        if not shapes_ok or self.tick_p.shape[1] == 0:
            raise ValueError(f"tables of mismatched shapes {self.group_ms.shape}, {self.group_p.shape}, "
                             f"{self.tick_p.shape}")
        probs = (self.group_p, self.tick_p)
        if not all(np.all(np.isfinite(p)) and np.all(p >= 0) and np.all(p.sum(-1) > 0) for p in probs) \
                or not 0 <= self.still_p <= 1:
            raise ValueError("probabilities that are negative, not finite or all zero")
        if (self.lead_ms is None) != (self.press_ms is None):
            raise ValueError("waits before the motion without waits before the press, or the reverse")
        if self.lead_ms is not None and (self.lead_ms.ndim != 2 or self.lead_ms.shape != (len(self.press_ms), 2)
                                         or len(self.press_ms) == 0 or not np.all(np.isfinite(self.lead_ms))
                                         or not np.all(np.isfinite(self.press_ms)) or np.any(self.press_ms < 0)):
            raise ValueError(f"waits of shapes {self.lead_ms.shape} and {self.press_ms.shape}, or not finite")

    def render(self, paths: list[np.ndarray], max_len: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Each continuous path (n, 3) as the logger would record it: (m, 3) whole ms and px, m ≤ max_len."""
        return [self._render_one(np.asarray(p, np.float64), max_len, rng) for p in paths]

    def _ticks(self, t0: float, t1: float, rng: np.random.Generator) -> np.ndarray:
        """Frame times after t0 up to the first at or past t1, on one clock group drawn for this movement.

        Frames keep to a grid of the group's mean interval (a 60 Hz screen: 16.67 ms, so whole-ms intervals
        run 17, 17, 16, …) with a jitter that does not add up: a late frame is followed by a short interval,
        as in the logs, which independent intervals would not reproduce. The jitter's size matches the
        spread of the group's frame intervals.
        """
        g = rng.choice(len(self.group_p), p=self.group_p)
        period, jitter = self._grids[g]
        n = int((t1 - t0) / period) + 2
        t = np.round(t0 + period * np.arange(1, n + 1) + rng.uniform(-jitter, jitter, n))  # (n,) whole ms
        t = np.maximum.accumulate(np.maximum(t, t0 + 1))  # a large jitter must not reorder frames
        return t[: int(np.searchsorted(t, t1)) + 1]

    @functools.cached_property
    def _grids(self) -> list[tuple[float, float]]:
        """:meth:`_grid` of every group, derived once per clock (not once per rendered movement)."""
        return [self._grid(g) for g in range(len(self.group_ms))]

    def _grid(self, g: int) -> tuple[float, float]:
        """Mean frame interval (ms) of group g and the half-width of a uniform jitter of each frame's time
        whose differences give the group's interval variance (rounding to whole ms adds about 1/6 ms²)."""
        ms = np.arange(1, self.tick_p.shape[1] + 1)
        core = np.abs(ms - (np.argmax(self.tick_p[g]) + 1)) <= GRID_CORE_MS  # frames near the most common one
        w = self.tick_p[g] * core / max(float((self.tick_p[g] * core).sum()), 1e-12)
        period = float((w * ms).sum())
        var = float((w * (ms - period) ** 2).sum())
        return max(period, 1.0), float(np.sqrt(max(var - 1 / 6, 0.0) * 1.5))

    def _render_one(self, p: np.ndarray, max_len: int, rng: np.random.Generator) -> np.ndarray:
        if len(p) < 4:  # nothing between the first report and the press
            return np.round(p)
        lead, t_start, press_wait = self._waits(p, rng)
        # the motion keeps its generated timing from the first report on; a press is reported where the cursor
        # rests, so the motion ends on the movement's end point by the last move's time
        motion = np.vstack([p[1:-2], [[p[-2, 0], p[-1, 1], p[-1, 2]]]])  # (n-2, 3)
        motion[:, 0] += t_start - p[1, 0]
        t_end = max(round(motion[-1, 0]), t_start)  # the last move
        ticks = np.concatenate([[t_start], self._ticks(t_start, t_end, rng)])  # (k,) whole ms; the last ≥ t_end
        xy = np.round(np.column_stack([np.interp(ticks, motion[:, 0], motion[:, c]) for c in (1, 2)]))  # (k, 2)
        moved = np.any(np.diff(xy, axis=0) != 0, axis=1)
        keep = np.concatenate([[True], moved | (rng.random(len(moved)) < self.still_p)])
        body = np.column_stack([ticks, xy])[keep]  # (m, 3)
        # the press: after the motion's end (a cursor resting before it yields no reports) and the dwell, where
        # the last report left the cursor
        press = np.array([max(t_end, body[-1, 0]) + press_wait, *body[-1, 1:]])
        out = np.vstack([np.round(p[:1]), lead, body, press])
        return _thinned(out, max_len)

    def _waits(self, p: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int, float]:
        """Still reports (m, 3) before the motion, the motion's first report time and the wait before the press.

        Drawn whole from one training movement where the clock holds them: a decoder regresses these waits
        (the reaction after the release, the dwell before the press) to their mean, while people's spread widely.
        """
        if self.lead_ms is None:
            return np.zeros((0, 3)), round(p[1, 0]), max(round(p[-1, 0] - p[-2, 0]), 0)
        k = int(rng.integers(len(self.press_ms)))
        t_still, t_start = self.lead_ms[k]
        lead = np.array([[t_still, 0.0, 0.0]]) if 0 <= t_still < t_start else np.zeros((0, 3))
        return lead, int(t_start), float(self.press_ms[k])


def _waits_of(p: np.ndarray) -> tuple[float, float, float]:
    """A real path's waits: (time of a still report before its first move or -1, time of the first moving
    report, wait before the press)."""
    moved = np.flatnonzero(np.any(np.diff(p[:, 1:], axis=0) != 0, axis=1))  # steps that moved
    j = int(moved[0]) if len(moved) else len(p) - 2  # step j goes from point j to j + 1
    t_still = float(p[1, 0]) if j >= 1 else -1.0
    return t_still, float(p[j + 1, 0]) if j >= 1 else float(p[1, 0]), float(p[-1, 0] - p[-2, 0])


def _rates(keys: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sorted median intervals merged into clock rates: medians within RATE_TOLERANCE ms of the run's first
    are one clock (a 60 Hz movement's median is 16 or 17 ms); each rate is named by its most common median."""
    rates, run = [], []
    for k, c in zip(keys, counts, strict=True):
        if run and k - run[0][0] > RATE_TOLERANCE:
            rates.append(max(run, key=lambda kc: kc[1])[0]), run.clear()
        run.append((k, c))
    if run:
        rates.append(max(run, key=lambda kc: kc[1])[0])
    return np.asarray(rates, int)


def _thinned(p: np.ndarray, max_len: int) -> np.ndarray:
    """At most max_len points: interior events dropped evenly (rare: a slow movement on a fast clock)."""
    if len(p) <= max_len:
        return p
    keep = np.unique(np.round(np.linspace(0, len(p) - 1, max_len)).astype(int))
    return p[keep]
