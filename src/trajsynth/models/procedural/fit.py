"""Measurements on training movements that the procedural model is fitted from.

A training movement (L points of t_ms, x_px, y_px) has three phases, as a logger
records them: the button release (point 0), a first wait until the cursor starts
moving (the *first interval*, point 0 → 1), the motion (points 1 … L-2, one event
per logger tick) and the press (point L-1, almost always at the last motion point,
after the *last interval*). Each movement is summarised by one record of
:data:`RECORD_FIELDS`; the model keeps these records per distance bin and draws
whole records, so the dependencies between the quantities (a long movement with
an overshoot and three corrections, say) survive.

* ``motion_ratio``: motion time (point 1 → L-2) divided by the Fitts prediction
  a + b·log2(1 + D/W) of its distance (the residual, as a ratio).
* ``first_ms`` / ``last_ms``: the first and last intervals.
* ``angle``: direction of the end point (rad, screen coordinates).
* ``submovements``: the speed-peak count of :mod:`trajsynth.metrics.kinematics`.
* ``primary_start`` / ``primary_end``: when the primary (fastest) submovement
  starts and ends, as shares of the motion time (the start is negative when it began
  before the first event), from the speed peak (see :func:`_primary`).
* ``pre_reach`` / ``primary_reach``: distance covered along the start→end axis
  when the primary starts and ends, relative to D (above 1: an overshoot);
  ``primary_offset``: the signed perpendicular offset where the primary ends,
  relative to D, which the corrections then remove.
* ``overshoot``: furthest along-axis point beyond the end, relative to D (≥ 0).
* ``lateral``: signed perpendicular offset of the point furthest from the
  start→end line, relative to D (the path's curvature); ``lateral_at``: how far
  along the axis it lies, relative to D.
"""

from __future__ import annotations

import numpy as np

from ...data.features import pad_paths
from ...metrics.kinematics import fitts_regression, kinematic_features

RECORD_FIELDS = ("motion_ratio", "first_ms", "last_ms", "angle", "submovements", "primary_start", "primary_end",
                 "pre_reach", "primary_reach", "primary_offset", "overshoot", "lateral", "lateral_at")
MINJERK_PEAK = 1.875  # peak speed of a minimum-jerk reach, relative to its mean speed (amplitude / duration)
PRIMARY_MIN_MS = 20.0  # shortest primary submovement measured (about one logger tick)
PRIMARY_ITERATIONS = 4  # fixed-point steps of the primary's duration (converges in 2-3 on SapiMouse)
LATERAL_AT_RANGE = (0.05, 0.95)  # keeps both halves of the lateral bump at a finite slope


def padded_paths(paths: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Paths moved to start at (0, 0, 0) and padded: P (N, T, 3) repeating each last point, lengths (N,)."""
    arrays = [np.asarray(p, np.float64) for p in paths]
    if not arrays:
        raise ValueError("no training movements to fit")
    for i, a in enumerate(arrays):
        if a.ndim != 2 or a.shape[1] != 3 or len(a) < 3:
            raise ValueError(f"movement {i} has shape {a.shape}; expected (n, 3) with n >= 3")
        if not np.isfinite(a).all() or (np.diff(a[:, 0]) < 0).any():
            raise ValueError(f"movement {i} has non-finite values or decreasing times")
    return pad_paths([a - a[:1] for a in arrays], max(len(a) for a in arrays))


def fitts_fit(distance: np.ndarray, motion_ms: np.ndarray, width_px: float) -> tuple[float, float]:
    """Least-squares (a ms, b ms/bit) of motion time = a + b·log2(1 + D/W)."""
    fit = fitts_regression(distance, motion_ms, width_px)
    return fit["intercept"], fit["slope"]


def fitts_predict(distance: np.ndarray, a: float, b: float, width_px: float) -> np.ndarray:
    """Predicted motion time (ms), at least 1 ms so ratios to it stay finite."""
    return np.maximum(a + b * np.log2(1.0 + distance / width_px), 1.0)


def interval_histogram(P: np.ndarray, L: np.ndarray, dt_max_ms: int) -> np.ndarray:
    """Counts (dt_max_ms,) of the motion intervals (between points 1 … L-2), by integer ms 1 … dt_max_ms.

    The first and last intervals are waits, not logger ticks, and are kept in the records
    instead. Intervals round to whole ms; 0 counts as 1 and anything longer than
    ``dt_max_ms`` as ``dt_max_ms``. Falls back to all intervals when no movement has any.
    """
    k = np.arange(P.shape[1])[None, :]  # (1, T)
    dt = np.diff(P[:, :, 0], axis=1, prepend=0.0)  # (N, T): dt[:, k] = t_k - t_{k-1}
    inner = (k >= 2) & (k <= L[:, None] - 2)
    values = dt[inner] if inner.any() else dt[(k >= 1) & (k < L[:, None])]
    ms = np.clip(np.round(values), 1, dt_max_ms).astype(np.int64) - 1
    return np.bincount(ms, minlength=dt_max_ms).astype(np.float64)


def _interp_rows(t: np.ndarray, v: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Row-wise linear interpolation of v (N, T) at times at (N,), t (N, T) non-decreasing."""
    rows, T = np.arange(len(t)), t.shape[1]
    i = np.clip((t <= at[:, None]).sum(1) - 1, 0, T - 2)  # (N,) segment holding `at`
    t0, t1 = t[rows, i], t[rows, i + 1]
    w = np.where(t1 > t0, np.clip((at - t0) / np.where(t1 > t0, t1 - t0, 1.0), 0.0, 1.0), 0.0)
    return v[rows, i] + w * (v[rows, i + 1] - v[rows, i])


def _axis_frame(P: np.ndarray, L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distance D (N,), direction (N,), and along / perpendicular positions (N, T) relative to D."""
    rows = np.arange(len(L))
    end = P[rows, L - 1, 1:]  # (N, 2)
    distance = np.hypot(end[:, 0], end[:, 1])
    if (distance <= 0).any():
        raise ValueError(f"movement {int(np.argmax(distance <= 0))} ends where it starts: its distance is 0")
    unit = end / distance[:, None]  # (N, 2)
    along = (P[:, :, 1] * unit[:, None, 0] + P[:, :, 2] * unit[:, None, 1]) / distance[:, None]
    perp = (-P[:, :, 1] * unit[:, None, 1] + P[:, :, 2] * unit[:, None, 0]) / distance[:, None]
    return distance, np.arctan2(end[:, 1], end[:, 0]), along, perp


def _primary(t: np.ndarray, along: np.ndarray, perp: np.ndarray, kin: dict[str, np.ndarray], first: np.ndarray,
             motion: np.ndarray, distance: np.ndarray) -> tuple[np.ndarray, ...]:
    """Primary submovement of each movement: start, end (shares of the motion time), along-axis reach before and
    after, and the perpendicular offset where it ends (all relative to D).

    A minimum-jerk reach of amplitude A and duration T peaks at 1.875·A/T halfway through,
    so around the measured speed peak the primary lasts T = 1.875·A/v_peak, where A is the
    along-axis distance covered within T/2 of the peak: a fixed point, found by iteration.
    """
    speed, peak = kin["peak_speed"], kin["peak_speed_time"] * kin["movement_time"]  # (N,) px/ms, ms
    duration = MINJERK_PEAK * distance / np.maximum(speed, 1e-9)
    for _ in range(PRIMARY_ITERATIONS):
        before, after = _interp_rows(t, along, peak - duration / 2), _interp_rows(t, along, peak + duration / 2)
        amplitude = np.maximum(after - before, 0.05) * distance
        duration = np.clip(MINJERK_PEAK * amplitude / np.maximum(speed, 1e-9), PRIMARY_MIN_MS,
                           np.maximum(motion, PRIMARY_MIN_MS))
    still = motion <= 0  # a single motion event: nothing to measure, the cursor jumps to the target
    safe = np.where(still, 1.0, motion)
    start = np.where(still, 0.0, np.clip((peak - duration / 2 - first) / safe, -0.5, 0.9))
    end = np.where(still, 1.0, np.clip((peak + duration / 2 - first) / safe, start + 0.05, 1.0))
    before = np.where(still, 0.0, np.clip(before, -0.5, 0.9))
    after = np.where(still, 1.0, np.clip(after, before + 0.05, 3.0))
    offset = np.where(still, 0.0, _interp_rows(t, perp, t[:, 1] + end * motion))
    return start, end, before, after, np.clip(offset, -3.0, 3.0)


def movement_records(P: np.ndarray, L: np.ndarray, width_px: float, max_submovements: int
                     ) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Records (N, len(RECORD_FIELDS)), distances (N,) and the Fitts (a, b) of the motion phase."""
    rows = np.arange(len(L))
    t = P[:, :, 0]  # (N, T)
    distance, angle, along, perp = _axis_frame(P, L)
    first, last = t[:, 1] - t[:, 0], t[rows, L - 1] - t[rows, L - 2]
    motion = t[rows, L - 2] - t[:, 1]  # 0 for a single motion event
    a, b = fitts_fit(distance, motion, width_px)
    kin = kinematic_features([P[i, :n] for i, n in enumerate(L)])
    primary = _primary(t, along, perp, kin, first, motion, distance)
    widest = np.argmax(np.abs(perp), axis=1)  # (N,) point furthest from the start→end line
    table = np.column_stack([
        motion / fitts_predict(distance, a, b, width_px), first, last, angle,
        np.clip(kin["submovements"], 1, max_submovements), *primary, np.clip(along.max(1) - 1, 0.0, 3.0),
        perp[rows, widest], np.clip(along[rows, widest], *LATERAL_AT_RANGE),
    ])  # (N, F)
    return table, distance, (a, b)


def bin_records(distance: np.ndarray, table: np.ndarray, n_bins: int, per_bin: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Equal-count bins of log distance: edges (n_bins+1,) and ``per_bin`` records of each (n_bins, per_bin, F).

    Bins are assigned by rank, so none is empty even with tied distances; an interior edge
    lies halfway (in log distance) between the neighbouring bins. A bin with fewer than
    ``per_bin`` movements is drawn with replacement, a larger one is subsampled.
    """
    n = len(distance)
    if n < n_bins:
        raise ValueError(f"{n} training movements cannot fill n_distance_bins={n_bins}: need at least that many")
    log_d = np.log(distance)
    order = np.argsort(log_d, kind="stable")
    bin_of = np.empty(n, np.int64)
    bin_of[order] = np.arange(n) * n_bins // n
    lo = np.array([log_d[bin_of == k].min() for k in range(n_bins)])
    hi = np.array([log_d[bin_of == k].max() for k in range(n_bins)])
    edges = np.concatenate([[lo[0]], (hi[:-1] + lo[1:]) / 2, [hi[-1]]])
    records = np.stack([
        table[rng.choice(np.flatnonzero(bin_of == k), per_bin, replace=bool((bin_of == k).sum() < per_bin))]
        for k in range(n_bins)
    ])
    return edges, records
