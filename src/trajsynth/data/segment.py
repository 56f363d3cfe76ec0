"""Cleaning of event logs and segmentation into point-to-point movements.

A movement runs from a button release, through the pointer moves that follow,
to the next button press (the click that ends it). Movements that contain a
drag are not point-to-point and are dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .raw import BUTTON_NAMES, DRAG, MOVE, PRESSED, RELEASED, EventLog

ARTEFACT_COORD = 65535  # Balabit writes this value for some out-of-screen events


@dataclass(frozen=True)
class SegmentConfig:
    """Rules for cutting movements out of a log (all times in ms, distances in px)."""

    min_distance: float = 10.0  # start-to-end distance below this: not a movement
    max_distance: float = 3000.0  # above this: implausible for one screen
    max_duration: float = 5000.0  # longer movements are dropped
    pause_ms: float = 1000.0  # a time gap longer than this is a pause
    pause_policy: str = "split"  # split: keep the part after the last pause; drop: discard
    min_points: int = 3  # start, at least one move, end

    def __post_init__(self) -> None:
        if self.pause_policy not in ("split", "drop"):
            raise ValueError(f"pause_policy must be 'split' or 'drop', got {self.pause_policy!r}")
        if not 0 < self.min_distance < self.max_distance:
            raise ValueError("need 0 < min_distance < max_distance")
        if self.min_points < 2 or self.pause_ms <= 0 or self.max_duration <= 0:
            raise ValueError("min_points must be >= 2; pause_ms and max_duration must be > 0")


@dataclass
class Segment:
    """One movement: absolute points (t_ms, x_px, y_px) and where it came from."""

    points: np.ndarray  # (n, 3) float64
    user: str
    session: str
    action: str  # e.g. "Left_click"
    domain: str = ""  # the data set it came from (the raw directory's name), when several are merged

    @property
    def distance(self) -> float:
        return float(np.hypot(*(self.points[-1, 1:] - self.points[0, 1:])))

    @property
    def duration(self) -> float:
        return float(self.points[-1, 0] - self.points[0, 0])


@dataclass
class SegmentStats:
    """Counts of what cleaning and segmentation removed, by reason."""

    events: int = 0
    dropped_events: Counter = field(default_factory=Counter)
    candidates: int = 0
    dropped_segments: Counter = field(default_factory=Counter)
    kept: int = 0

    def merge(self, other: SegmentStats) -> None:
        self.events += other.events
        self.dropped_events.update(other.dropped_events)
        self.candidates += other.candidates
        self.dropped_segments.update(other.dropped_segments)
        self.kept += other.kept


def clean_log(log: EventLog, stats: SegmentStats) -> EventLog:
    """Drop artefact coordinates, out-of-order events and exact duplicates."""
    stats.events += len(log)
    # Negative positions are kept: they are real on multi-monitor desktops.
    bad = (log.x >= ARTEFACT_COORD) | (log.y >= ARTEFACT_COORD)
    stats.dropped_events["artefact coordinate"] += int(bad.sum())
    log = log.select(~bad)
    # An event earlier than one already seen breaks time order: keep only events at
    # the running maximum, so a backwards clock jump costs the few events it covers.
    in_order = log.t >= np.maximum.accumulate(log.t) if len(log) else np.ones(0, bool)
    stats.dropped_events["non-monotonic timestamp"] += int((~in_order).sum())
    log = log.select(in_order)
    same = np.zeros(len(log), bool)
    if len(log) > 1:
        same[1:] = (
            (np.diff(log.t) == 0) & (np.diff(log.x) == 0) & (np.diff(log.y) == 0)
            & (log.state[1:] == log.state[:-1]) & (log.button[1:] == log.button[:-1])
        )
    stats.dropped_events["duplicate event"] += int(same.sum())
    return log.select(~same)


def _click_pairs(state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(release index, press index, contains-drag flag) for each press preceded by a release."""
    marks = np.flatnonzero((state == PRESSED) | (state == RELEASED))
    if len(marks) < 2:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, bool)
    prev, cur = marks[:-1], marks[1:]
    ok = (state[prev] == RELEASED) & (state[cur] == PRESSED)
    starts, ends = prev[ok], cur[ok]
    drag_cum = np.cumsum(state == DRAG)
    has_drag = drag_cum[ends] - drag_cum[starts] > 0
    return starts, ends, has_drag


def _movement_points(log: EventLog, i: int, j: int) -> np.ndarray:
    """Points of release i, the moves between, and press j; equal times keep the last."""
    idx = np.arange(i, j + 1)
    keep = (log.state[idx] == MOVE) | (idx == i) | (idx == j)
    idx = idx[keep]
    pts = np.stack([log.t[idx], log.x[idx], log.y[idx]], axis=1)  # (n, 3)
    # Zero time gaps: two positions at one instant cannot both be sampled; the
    # later one is the pointer's position at that time.
    last_of_time = np.append(pts[1:, 0] != pts[:-1, 0], True)
    return pts[last_of_time]


def _apply_pause_rule(pts: np.ndarray, cfg: SegmentConfig) -> np.ndarray | None:
    gaps = np.diff(pts[:, 0])
    long_gaps = np.flatnonzero(gaps > cfg.pause_ms)
    if len(long_gaps) == 0:
        return pts
    if cfg.pause_policy == "drop":
        return None
    # The aimed movement toward the click starts after the last pause.
    return pts[long_gaps[-1] + 1 :]


def _reject_reason(pts: np.ndarray | None, cfg: SegmentConfig) -> str | None:
    if pts is None:
        return "long pause (pause_policy=drop)"
    if len(pts) < cfg.min_points:
        return f"fewer than {cfg.min_points} points"
    dist = float(np.hypot(*(pts[-1, 1:] - pts[0, 1:])))
    if dist < cfg.min_distance:
        return "shorter than min_distance"
    if dist > cfg.max_distance:
        return "longer than max_distance"
    if pts[-1, 0] - pts[0, 0] > cfg.max_duration:
        return "longer than max_duration"
    return None


def segment_log(
    log: EventLog, user: str, session: str, cfg: SegmentConfig, stats: SegmentStats
) -> list[Segment]:
    """Clean one session's log and cut it into movements."""
    log = clean_log(log, stats)
    starts, ends, has_drag = _click_pairs(log.state)
    stats.candidates += len(starts)
    stats.dropped_segments["contains a drag"] += int(has_drag.sum())
    out: list[Segment] = []
    for i, j in zip(starts[~has_drag], ends[~has_drag], strict=True):
        pts = _apply_pause_rule(_movement_points(log, int(i), int(j)), cfg)
        reason = _reject_reason(pts, cfg)
        if reason:
            stats.dropped_segments[reason] += 1
            continue
        action = f"{BUTTON_NAMES.get(int(log.button[j]), 'Other')}_click"
        out.append(Segment(pts, user, session, action))
    stats.kept += len(out)
    return out
