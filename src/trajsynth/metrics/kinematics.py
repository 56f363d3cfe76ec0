"""Kinematics of mouse movements: per-trajectory features, Fitts's law, real vs generated.

Inputs are pixel paths: a list of arrays (n_i, 3) of (t_ms, x_px, y_px), times
non-decreasing. Features are measured relative to each path's first point.

All paths are packed into one array of points with offsets, and every feature is a
segment operation on that array (``np.bincount`` by path id, ``ufunc.reduceat`` over
offsets, one global ``np.interp``), so 10,000 paths take a fraction of a second.

Feature definitions (one value per trajectory):

* ``distance`` (px): straight line from the first to the last point.
* ``movement_time`` (ms): last time minus first time.
* ``path_efficiency``: distance / path length, in [0, 1]; 1 for a path that never moves.
* ``peak_speed`` (px/ms), ``peak_speed_time`` (time of the first maximum / movement time,
  in [0, 1]), ``mean_abs_jerk`` (px/ms³) and ``submovements`` all come from the *smoothed
  speed profile*: the cumulative path length S(t) is interpolated linearly between samples
  (so the raw speed is piecewise constant) and averaged with a 50 ms box filter,
  v(t) = [S(t + 25) − S(t − 25)] / 50 ms (window clipped to the movement), evaluated on a
  regular 10 ms grid (coarser for movements over 5.11 s, at most 512 points). The box
  spans about three samples of a 60 Hz logger: it removes pixel-rounding and timing-jitter
  noise while keeping the sub-movement structure (100–300 ms bumps).
* ``mean_abs_jerk``: mean |d²v/dt²| over the grid, by finite differences of the smoothed
  speed (0 with fewer than three grid points).
* ``submovements``: a hysteresis count on the smoothed speed with δ = 10 % of the path's
  peak speed. Starting from rest (reference 0), a sub-movement is counted each time the
  speed rises at least δ above the lowest value since the previous confirmed fall; a fall
  is confirmed when the speed drops at least δ below the highest value since the last
  count. Each counted peak therefore has rises and falls of at least δ on both sides,
  i.e. a prominence of at least δ (the last one needs no fall: a movement may end fast).
* ``mean_curvature`` (rad/px): total absolute turning angle between consecutive non-zero
  steps divided by the path length. Pixel rounding makes even a straight diagonal turn a
  little, so integer (logged) and float (generated) paths differ slightly here.
* ``overshoot``: 1 when the projection of some point on the start→end axis exceeds the
  end distance by more than max(2 px, 2 % of the distance), else 0 (0 when distance is 0).
"""

from __future__ import annotations

import numpy as np

from .base import MetricInfo, register
from .distribution import wasserstein1

FEATURES = (
    "distance", "movement_time", "path_efficiency", "peak_speed", "peak_speed_time",
    "mean_curvature", "mean_abs_jerk", "submovements", "overshoot",
)
GRID_MS = 10.0  # step of the regular time grid of the speed profile
MAX_GRID = 512  # most grid points per path: longer movements get a coarser step
SMOOTH_HALF_MS = 25.0  # half-width of the box filter on speed (50 ms window)
SUBMOVEMENT_FRAC = 0.10  # hysteresis of the sub-movement count, relative to the peak speed
OVERSHOOT_PX, OVERSHOOT_FRAC = 2.0, 0.02  # overshoot tolerance: max(2 px, 2 % of the distance)
# Target widths are not in the logs; Fitts's ID uses this nominal width (about an icon or a
# button). Changing W shifts ID non-linearly, so only compare fits made with the same W.
DEFAULT_WIDTH_PX = 20.0


# --------------------------------------------------------------------------- packing


def pack_paths(paths: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Validate paths and concatenate them: points (P, 3) float64 and offsets (N+1,) int64."""
    if isinstance(paths, np.ndarray) or not hasattr(paths, "__len__"):
        raise ValueError("paths must be a list of (n_i, 3) arrays of (t_ms, x_px, y_px)")
    if len(paths) == 0:
        raise ValueError("paths is empty: need at least one trajectory")
    arrays = [np.asarray(p, np.float64) for p in paths]
    for i, a in enumerate(arrays):
        if a.ndim != 2 or a.shape[1] != 3 or len(a) == 0:
            raise ValueError(f"path {i} has shape {a.shape}; expected (n, 3) with n >= 1 of (t_ms, x_px, y_px)")
    pts = np.concatenate(arrays)  # (P, 3)
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)
    if not np.isfinite(pts).all():
        bad = int(np.searchsorted(offsets, np.flatnonzero(~np.isfinite(pts).all(1))[0], side="right") - 1)
        raise ValueError(f"path {bad} contains NaN or Inf")
    seg = _segment_ids(offsets)
    back = (np.diff(pts[:, 0]) < 0) & (seg[:-1] == seg[1:])
    if back.any():
        raise ValueError(f"path {int(seg[np.flatnonzero(back)[0]])} has decreasing timestamps")
    return pts, offsets


def _segment_ids(offsets: np.ndarray) -> np.ndarray:
    """Path index of every packed element."""
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def _per_path_sum(values: np.ndarray, seg: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(seg, weights=values, minlength=n)


# --------------------------------------------------------------------------- geometry


def _steps(pts: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step vectors (P-1, 2) with steps across path boundaries zeroed, and their lengths."""
    step = np.diff(pts[:, 1:], axis=0)  # (P-1, 2)
    step[seg[:-1] != seg[1:]] = 0.0
    return step, np.hypot(step[:, 0], step[:, 1])


def _curvature(step: np.ndarray, step_len: np.ndarray, seg: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Total |turning angle| between consecutive non-zero steps of a path, per px of path."""
    moving = np.flatnonzero(step_len > 0)
    a, b = moving[:-1], moving[1:]
    same = seg[a] == seg[b]  # step k belongs to the path of point k
    a, b = a[same], b[same]
    cross = step[a, 0] * step[b, 1] - step[a, 1] * step[b, 0]
    dot = (step[a] * step[b]).sum(1)
    turn = _per_path_sum(np.abs(np.arctan2(cross, dot)), seg[a], len(length))
    return np.where(length > 0, turn / np.where(length > 0, length, 1.0), 0.0)


def _overshoot(pts: np.ndarray, offsets: np.ndarray, seg: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """1 where the projection on the start→end axis passes the end by more than the tolerance."""
    rel = pts[:, 1:] - pts[offsets[:-1], 1:][seg]  # (P, 2) from each path's start
    end = rel[offsets[1:] - 1]  # (N, 2)
    unit = end / np.where(distance > 0, distance, 1.0)[:, None]
    proj = (rel * unit[seg]).sum(1)  # (P,)
    furthest = np.maximum.reduceat(proj, offsets[:-1])  # every path has >= 1 point
    tol = np.maximum(OVERSHOOT_PX, OVERSHOOT_FRAC * distance)
    return ((distance > 0) & (furthest > distance + tol)).astype(np.float64)


# --------------------------------------------------------------------------- speed profile


def _speed_grid(
    pts: np.ndarray, offsets: np.ndarray, seg: np.ndarray, step_len: np.ndarray, duration: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Box-smoothed speed on a regular grid: speeds (G,), grid offsets (N+1,), times from start (G,), grid step (N,)."""
    dt_grid = np.maximum(GRID_MS, duration / (MAX_GRID - 1))  # (N,)
    k_count = np.floor(duration / dt_grid + 1e-9).astype(np.int64) + 1
    goff = np.concatenate([[0], np.cumsum(k_count)])
    gseg = _segment_ids(goff)
    g = (np.arange(goff[-1]) - goff[gseg]) * dt_grid[gseg]  # (G,) time from each start
    # One increasing time axis for all paths (1 ms gaps between them) so one interp serves all.
    shift = np.concatenate([[0.0], np.cumsum(duration + 1.0)[:-1]])
    t_axis = pts[:, 0] - pts[offsets[:-1], 0][seg] + shift[seg]
    arc = np.concatenate([[0.0], np.cumsum(step_len)])  # (P,) path length so far (0-length boundary steps)
    lo = np.maximum(g - SMOOTH_HALF_MS, 0.0)
    hi = np.minimum(g + SMOOTH_HALF_MS, duration[gseg])
    width = hi - lo
    s_lo = np.interp(lo + shift[gseg], t_axis, arc)
    s_hi = np.interp(hi + shift[gseg], t_axis, arc)
    speed = np.where(width > 0, (s_hi - s_lo) / np.where(width > 0, width, 1.0), 0.0)
    return speed, goff, g, dt_grid


def _peak(speed: np.ndarray, goff: np.ndarray, g: np.ndarray, duration: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak speed and the relative time of its first occurrence."""
    gseg = _segment_ids(goff)
    peak = np.maximum.reduceat(speed, goff[:-1])
    at = np.where(speed >= peak[gseg], np.arange(len(speed)), len(speed))
    first = np.minimum.reduceat(at, goff[:-1])
    rel_time = np.where(duration > 0, g[first] / np.where(duration > 0, duration, 1.0), 0.0)
    return peak, np.clip(rel_time, 0.0, 1.0)


def _mean_abs_jerk(speed: np.ndarray, goff: np.ndarray, dt_grid: np.ndarray) -> np.ndarray:
    """Mean |second derivative| of the grid speed (px/ms³); 0 below three grid points."""
    gseg = _segment_ids(goff)
    h = dt_grid[gseg]
    acc = np.diff(speed) / h[:-1]  # (G-1,)
    jerk = np.diff(acc) / h[:-2]  # (G-2,)
    valid = (gseg[:-2] == gseg[2:])  # all three grid points in one path
    total = _per_path_sum(np.abs(jerk[valid]), gseg[:-2][valid], len(dt_grid))
    count = np.bincount(gseg[:-2][valid], minlength=len(dt_grid))
    return total / np.maximum(count, 1)


def _count_submovements(speed: np.ndarray, goff: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Hysteresis count of speed peaks (see the module docstring).

    The rule is sequential, so it steps through grid positions; each step is vectorised
    over all paths still running (paths sorted by length, so those are a prefix).
    """
    k_count = np.diff(goff)
    order = np.argsort(-k_count, kind="stable")
    start, delta = goff[:-1][order], SUBMOVEMENT_FRAC * peak[order]
    n_active = np.searchsorted(-k_count[order], -np.arange(k_count.max()), side="left")  # paths with K > k
    rising = np.ones(len(order), bool)
    ref = np.zeros(len(order))  # running min while rising, running max while falling; rest = 0
    count = np.zeros(len(order))
    for k, m in enumerate(n_active):
        v, r, d = speed[start[:m] + k], rising[:m], delta[:m]
        lo, hi = np.minimum(ref[:m], v), np.maximum(ref[:m], v)
        up = r & (d > 0) & (v - lo >= d)
        down = ~r & (hi - v >= d)
        count[:m] += up
        flip = up | down
        ref[:m] = np.where(flip, v, np.where(r, lo, hi))
        rising[:m] = r ^ flip
    out = np.empty_like(count)
    out[order] = count
    return out


# --------------------------------------------------------------------------- public API


def kinematic_features(paths: list[np.ndarray]) -> dict[str, np.ndarray]:
    """One value per trajectory for each name in :data:`FEATURES` (see the module docstring)."""
    pts, offsets = pack_paths(paths)
    n, seg = len(offsets) - 1, _segment_ids(offsets)
    first, last = offsets[:-1], offsets[1:] - 1
    end = pts[last, 1:] - pts[first, 1:]  # (N, 2)
    distance = np.hypot(end[:, 0], end[:, 1])
    duration = pts[last, 0] - pts[first, 0]
    step, step_len = _steps(pts, seg)
    length = _per_path_sum(step_len, seg[:-1], n)
    efficiency = np.where(length > 0, np.minimum(distance / np.where(length > 0, length, 1.0), 1.0), 1.0)
    speed, goff, g, dt_grid = _speed_grid(pts, offsets, seg, step_len, duration)
    peak, peak_time = _peak(speed, goff, g, duration)
    return {
        "distance": distance,
        "movement_time": duration,
        "path_efficiency": efficiency,
        "peak_speed": peak,
        "peak_speed_time": peak_time,
        "mean_curvature": _curvature(step, step_len, seg[:-1], length),
        "mean_abs_jerk": _mean_abs_jerk(speed, goff, dt_grid),
        "submovements": _count_submovements(speed, goff, peak),
        "overshoot": _overshoot(pts, offsets, seg, distance),
    }


def fitts_regression(
    distance: np.ndarray, movement_time: np.ndarray, width_px: float = DEFAULT_WIDTH_PX, bins: int | None = None,
) -> dict[str, float]:
    """Least-squares fit of MT = a + b·ID, ID = log2(D / W + 1) (Shannon form, MacKenzie 1992).

    Returns ``slope`` b (ms/bit), ``intercept`` a (ms) and ``r2``. W is a nominal width
    (:data:`DEFAULT_WIDTH_PX`) because target sizes are not logged. Per-movement fits of
    free mouse use give low R²; with ``bins`` the fit is made on the mean MT of that many
    equal-count ID bins instead, as Fitts studies do over their conditions.
    """
    d = np.asarray(distance, np.float64).reshape(-1)
    mt = np.asarray(movement_time, np.float64).reshape(-1)
    if d.shape != mt.shape:
        raise ValueError(f"distance has {d.size} values but movement_time has {mt.size}")
    if d.size < 2 or not (np.isfinite(d).all() and np.isfinite(mt).all()):
        raise ValueError("fitts_regression needs at least 2 finite (distance, movement_time) pairs")
    if (d < 0).any() or not width_px > 0:
        raise ValueError(f"distances must be >= 0 and width_px > 0 (got width_px={width_px})")
    ident = np.log2(d / width_px + 1.0)
    if bins is not None:
        ident, mt = _bin_means(ident, mt, bins)
    if np.ptp(ident) == 0:
        raise ValueError("all movements have the same index of difficulty: the Fitts slope is undefined")
    x, y = ident - ident.mean(), mt - mt.mean()
    slope = float((x * y).sum() / (x * x).sum())
    intercept = float(mt.mean() - slope * ident.mean())
    ss_res, ss_tot = float(((y - slope * x) ** 2).sum()), float((y * y).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return {"slope": slope, "intercept": intercept, "r2": float(r2)}


def _bin_means(ident: np.ndarray, mt: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean ID and MT in ``bins`` equal-count bins of ID."""
    if bins < 2 or bins > len(ident):
        raise ValueError(f"bins must be in [2, {len(ident)}], got {bins}")
    order = np.argsort(ident, kind="stable")
    groups = np.array_split(order, bins)
    return np.array([ident[g].mean() for g in groups]), np.array([mt[g].mean() for g in groups])


def kinematics_report(
    real_paths: list[np.ndarray], fake_paths: list[np.ndarray], width_px: float = DEFAULT_WIDTH_PX,
) -> dict[str, float]:
    """W1 per feature (native units), Fitts fits of both sets and summary rates, as plain floats."""
    real, fake = kinematic_features(real_paths), kinematic_features(fake_paths)
    out = {f"w1_{name}": wasserstein1(real[name], fake[name]) for name in FEATURES}
    fits = {
        side: fitts_regression(f["distance"], f["movement_time"], width_px)
        for side, f in (("real", real), ("fake", fake))
    }
    for key in ("slope", "intercept", "r2"):
        out[f"fitts_{key}_real"] = fits["real"][key]
        out[f"fitts_{key}_fake"] = fits["fake"][key]
        out[f"fitts_{key}_diff"] = abs(fits["real"][key] - fits["fake"][key])
    for key, feat in (("overshoot_rate", "overshoot"), ("submovements_mean", "submovements"),
                      ("peak_speed_time_mean", "peak_speed_time")):
        out[f"{key}_real"] = float(real[feat].mean())
        out[f"{key}_fake"] = float(fake[feat].mean())
    return out


_UNITS = {
    "distance": "px", "movement_time": "ms", "path_efficiency": "ratio", "peak_speed": "px/ms",
    "peak_speed_time": "fraction of the movement", "mean_curvature": "rad/px", "mean_abs_jerk": "px/ms³",
    "submovements": "count", "overshoot": "0/1",
}
for _name in FEATURES:
    register(MetricInfo(
        f"w1_{_name}", "lower", 0.0,
        f"Wasserstein-1 distance of per-trajectory {_name.replace('_', ' ')} ({_UNITS[_name]}), real vs generated",
    ))
register(MetricInfo("fitts_slope_diff", "lower", 0.0, "|Fitts slope real − generated| (ms/bit, nominal W)"))
register(MetricInfo("fitts_intercept_diff", "lower", 0.0, "|Fitts intercept real − generated| (ms)"))
register(MetricInfo("fitts_r2_diff", "lower", 0.0, "|Fitts R² real − generated| (per-movement fits)"))
