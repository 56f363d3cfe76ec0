"""The 8-feature "V4" trajectory format, its normalisation and its inverse.

Per step k of a movement with points (t_k, x_k, y_k), k = 0 … n-1:

=========  ==========================================================  =====================
feature    raw quantity                                                 scaling to [-1, 1]
=========  ==========================================================  =====================
dx, dy     x_k - x_0, y_k - y_0 (px)                                    (2/π)·atan(v / D)
speed      |p_k - p_{k-1}| / dt_k (px/ms), 0 at k = 0                   2·slog(v) - 1
accel      (speed_k - speed_{k-1}) / dt_k (px/ms²), 0 at k = 0          slog(v)
sin_h      sin of the heading of step k (held over still steps)         none
cos_h      cos of the heading                                           none
ang_vel    wrapped heading change / dt_k (rad/ms), 0 at k = 0           slog(v)
dt         t_k - t_{k-1} (ms), 0 at k = 0                               2·slog(v) - 1
=========  ==========================================================  =====================

``D`` is the movement's own start-to-end distance, so the end point always lies
on the ring |atan| = π/4 and overshoots or curved paths compress smoothly
instead of being clipped. ``slog(v) = sign(v)·log1p(|v|/s)/log1p(m/s)`` is a
signed log scale with a typical magnitude ``s`` (median of |v|) and a ceiling
``m`` (a high quantile, or the maximum for dt), fitted on the training split;
values past ``m`` are clipped. The condition is the distance on a log scale
between ``d_min`` and ``d_max``. The path is recovered exactly (up to float32
rounding) from dx, dy, dt and the condition: see :func:`features_to_paths`.
Screen coordinates are kept: y grows downwards.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np

FEATURE_NAMES = ("dx", "dy", "speed", "accel", "sin_h", "cos_h", "ang_vel", "dt")
N_FEATURES = len(FEATURE_NAMES)
FORMAT_VERSION = 1
_EPS = 1e-6


@dataclass(frozen=True)
class NormalizationParams:
    """Constants of the feature and condition scaling (saved with every data dir)."""

    d_min: float  # px, condition -1
    d_max: float  # px, condition +1
    speed_scale: float
    speed_max: float
    accel_scale: float
    accel_max: float
    ang_vel_scale: float
    ang_vel_max: float
    dt_scale: float
    dt_max: float
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> NormalizationParams:
        """From a mapping of numbers; ValueError naming what is missing or not a number."""
        if not isinstance(d, dict):
            raise ValueError(f"normalization params must be a mapping, got {type(d).__name__}")
        names = set(cls.__dataclass_fields__)
        missing = names - set(d) - {"format_version"}
        if missing:
            raise ValueError(f"normalization params lack {sorted(missing)}")
        bad = sorted(k for k in names & set(d) if isinstance(d[k], bool) or not isinstance(d[k], numbers.Real))
        if bad:
            raise ValueError(f"normalization params {bad} are not numbers")
        version = d.get("format_version", FORMAT_VERSION)
        if not (math.isfinite(version) and version == int(version)):
            raise ValueError(f"normalization params: format_version {version!r} is not a whole number")
        return cls(**{k: (int(v) if k == "format_version" else float(v)) for k, v in d.items() if k in names})


def _slog(v: np.ndarray, scale: float, vmax: float) -> np.ndarray:
    return np.clip(np.sign(v) * np.log1p(np.abs(v) / scale) / np.log1p(vmax / scale), -1.0, 1.0)


def _slog_inv(f: np.ndarray, scale: float, vmax: float) -> np.ndarray:
    return np.sign(f) * scale * np.expm1(np.abs(f) * np.log1p(vmax / scale))


def distance_to_condition(d: np.ndarray, p: NormalizationParams) -> np.ndarray:
    c = 2 * (np.log(np.asarray(d, np.float64)) - np.log(p.d_min)) / (np.log(p.d_max) - np.log(p.d_min)) - 1
    return np.clip(c, -1.0, 1.0)


def condition_to_distance(c: np.ndarray, p: NormalizationParams) -> np.ndarray:
    frac = (np.asarray(c, np.float64) + 1) / 2
    return np.exp(np.log(p.d_min) + frac * (np.log(p.d_max) - np.log(p.d_min)))


def pad_paths(paths: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack ragged (n, 3) paths into (N, T, 3), repeating each last point, + lengths."""
    lengths = np.array([len(p) for p in paths], np.int64)
    out = np.empty((len(paths), max_len, 3), np.float64)
    for i, p in enumerate(paths):
        out[i, : len(p)] = p
        out[i, len(p) :] = p[-1]
    return out, lengths


def raw_kinematics(P: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
    """Unscaled per-step quantities of padded paths P (N, T, 3) = (t, x, y)."""
    N, T, _ = P.shape
    valid = np.arange(T)[None, :] < lengths[:, None]  # (N, T)
    rel = P[:, :, 1:] - P[:, :1, 1:]  # (N, T, 2) displacement from start
    dt = np.zeros((N, T))
    dt[:, 1:] = np.diff(P[:, :, 0], axis=1)
    step = np.zeros((N, T, 2))
    step[:, 1:] = np.diff(P[:, :, 1:], axis=1)
    step_len = np.hypot(step[..., 0], step[..., 1])  # (N, T)
    safe_dt = np.where(dt > 0, dt, 1.0)
    speed = np.where(dt > 0, step_len / safe_dt, 0.0)
    accel = np.zeros((N, T))
    accel[:, 1:] = np.diff(speed, axis=1) / safe_dt[:, 1:]
    heading = _held_heading(step, step_len > 0)
    turn = np.zeros((N, T))
    turn[:, 1:] = np.angle(np.exp(1j * np.diff(heading, axis=1)))  # wrapped to (-π, π]
    ang_vel = turn / safe_dt
    for a in (dt, speed, accel, ang_vel):
        a[~valid] = 0.0
    return dict(rel=rel, dt=dt, speed=speed, accel=accel, heading=heading, ang_vel=ang_vel, valid=valid)


def _held_heading(step: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """Heading of each step; still steps hold the last heading (the first, the next one)."""
    N, T = moving.shape
    raw = np.arctan2(step[..., 1], step[..., 0])  # (N, T)
    idx = np.where(moving, np.arange(T)[None, :], -1)
    last = np.maximum.accumulate(idx, axis=1)  # forward fill
    first = np.argmax(moving, axis=1)  # first moving step (0 if none)
    last = np.where(last < 0, first[:, None], last)
    return np.take_along_axis(raw, last, axis=1)


def fit_params(kin: dict[str, np.ndarray], d_min: float, d_max: float, q: float = 0.995,
               dt_bound: float = 0.0) -> NormalizationParams:
    """Robust scales from training kinematics (median magnitude and a high quantile).

    ``dt_bound`` is the largest time step segmentation can let through (the pause
    threshold, or the longest movement when long ones are thinned). dt's scale
    covers it, so a slower logger in the validation or test users is never
    clipped and the inverse recovers its times exactly.
    """
    valid = kin["valid"].copy()
    valid[:, 0] = False  # step 0 carries no motion

    def scales(a: np.ndarray, quantile: float) -> tuple[float, float]:
        v = np.abs(a[valid])
        v = v[v > 0]
        if len(v) == 0:
            return 1.0, 2.0
        s, m = float(np.median(v)), float(np.quantile(v, quantile))
        return max(s, _EPS), max(m, 2 * max(s, _EPS))

    ss, sm = scales(kin["speed"], q)
    acs, acm = scales(kin["accel"], q)
    avs, avm = scales(kin["ang_vel"], q)
    dts, dtm = scales(kin["dt"], 1.0)
    dtm = max(dtm, float(dt_bound))
    return NormalizationParams(d_min, d_max, ss, sm, acs, acm, avs, avm, dts, dtm)


def paths_to_features(
    paths: list[np.ndarray], max_len: int, p: NormalizationParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paths (each (n, 3), any origin) → X (N, T, 8) float32 zero-padded, C (N,), L (N,)."""
    return padded_to_features(*pad_paths(paths, max_len), p)


def padded_to_features(P: np.ndarray, L: np.ndarray, p: NormalizationParams
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`paths_to_features` of paths already padded as :func:`pad_paths` pads them: P (N, T, 3) with
    each last point repeated, lengths L (N,)."""
    kin = raw_kinematics(P, L)
    end = kin["rel"][np.arange(len(L)), L - 1]  # (N, 2)
    D = np.maximum(np.hypot(end[:, 0], end[:, 1]), _EPS)  # (N,)
    pos = (2 / np.pi) * np.arctan(kin["rel"] / D[:, None, None])  # (N, T, 2)
    columns = (
        pos[..., 0], pos[..., 1],
        2 * _slog(kin["speed"], p.speed_scale, p.speed_max) - 1,
        _slog(kin["accel"], p.accel_scale, p.accel_max),
        np.sin(kin["heading"]), np.cos(kin["heading"]),
        _slog(kin["ang_vel"], p.ang_vel_scale, p.ang_vel_max),
        2 * _slog(kin["dt"], p.dt_scale, p.dt_max) - 1,
    )
    # Written column by column into float32: the same values as stacking in float64 and casting, without the
    # float64 copy (a batch of generated movements is tens of MB).
    X = np.empty((*P.shape[:2], len(columns)), np.float32)  # (N, T, 8)
    for i, column in enumerate(columns):
        X[..., i] = column
    X[~kin["valid"]] = 0.0
    C = distance_to_condition(D, p)
    return X, C.astype(np.float32), L


def features_to_paths(
    X: np.ndarray, C: np.ndarray, L: np.ndarray, p: NormalizationParams, from_increments: bool = False
) -> list[np.ndarray]:
    """Invert: features + condition → (n, 3) paths (t_ms, x_px, y_px) from (0, 0, 0).

    dx, dy are undone with the distance the condition encodes; times are the
    cumulative sum of dt; paths start at the first step. Speed, acceleration and heading are redundant for the
    path and are not used, unless ``from_increments`` (see :func:`_integrated`).
    """
    X = np.asarray(X, np.float64)
    D = condition_to_distance(np.asarray(C).reshape(-1), p)  # (N,)
    pos = np.clip(X[..., :2], -1 + 1e-7, 1 - 1e-7)
    xy = np.tan(pos * np.pi / 2) * D[:, None, None]  # (N, T, 2)
    xy -= xy[:, :1]  # exact zero start for generated features too (a no-op on real data)
    dt = _slog_inv((X[..., 7] + 1) / 2, p.dt_scale, p.dt_max)  # (N, T)
    dt[:, 0] = 0.0
    L = np.asarray(L, int)
    if from_increments:
        xy = _integrated(X, xy, dt, L, p)
    t = np.cumsum(dt, axis=1)
    return [np.column_stack([t[i, :n], xy[i, :n]]) for i, n in enumerate(L)]


def _integrated(X: np.ndarray, xy: np.ndarray, dt: np.ndarray, L: np.ndarray, p: NormalizationParams) -> np.ndarray:
    """Positions (N, T, 2) from the steps speed · dt along the heading, ending where the positions xy end.

    For decoded (not real) features: a decoder's small errors in the start-relative positions become
    jitter in every step, which a detector sees at once, while its speeds and headings are smooth.
    The steps are summed, and the difference between their end and the decoded end point is spread
    over the path in proportion to the distance travelled, so the movement still ends where decoded.
    On real features both ways give the same path (up to the clipping of extreme speeds).
    """
    speed = np.maximum(_slog_inv((X[..., 2] + 1) / 2, p.speed_scale, p.speed_max), 0.0)  # (N, T) px/ms
    heading = np.arctan2(X[..., 4], X[..., 5])  # (N, T)
    step = (speed * dt)[..., None] * np.stack([np.cos(heading), np.sin(heading)], -1)  # (N, T, 2)
    valid = np.arange(X.shape[1])[None, :] < L[:, None]
    step[~valid] = 0.0
    step[:, 0] = 0.0
    walked = np.cumsum(step, axis=1)  # (N, T, 2)
    travel = np.cumsum(np.hypot(step[..., 0], step[..., 1]), axis=1)  # (N, T)
    rows = np.arange(len(L))
    last = np.maximum(L - 1, 0)
    total = travel[rows, last]  # (N,)
    even = np.arange(X.shape[1])[None, :] / np.maximum(last, 1)[:, None]  # no travel: spread by index
    w = np.where(total[:, None] > 0, travel / np.maximum(total, 1e-12)[:, None], np.minimum(even, 1.0))
    drift = xy[rows, last] - walked[rows, last]  # (N, 2)
    return walked + w[..., None] * drift[:, None, :]
