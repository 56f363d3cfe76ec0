"""Synthetic mouse movements for tests: minimum-jerk reaches with human-like noise.

A minimum-jerk reach (Flash & Hogan 1985) follows s(τ) = 10τ³ − 15τ⁴ + 6τ⁵ from
start to end, which gives the bell-shaped speed profile of real aimed moves.
Durations follow Fitts's law, T = a + b·log2(1 + D/W); a sideways bump makes
paths curve, and pixel rounding plus timing jitter mimic a 60 Hz logger.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from .segment import Segment


def minimum_jerk_path(
    distance: float, angle: float, rng: np.random.Generator, hz: float = 60.0,
    fitts_a: float = 150.0, fitts_b: float = 120.0, width: float = 20.0, start=(500.0, 400.0),
) -> np.ndarray:
    """One (n, 3) path (t_ms, x_px, y_px) with integer pixels and strictly rising times."""
    duration = fitts_a + fitts_b * np.log2(1 + distance / width)
    duration *= rng.uniform(0.8, 1.25)
    n = max(3, int(round(duration * hz / 1000)) + 1)
    dt = (1000.0 / hz) * rng.uniform(0.85, 1.15, size=n - 1)
    t = np.concatenate([[0.0], np.cumsum(np.round(dt))])
    tau = t / t[-1]
    s = 10 * tau**3 - 15 * tau**4 + 6 * tau**5  # (n,) minimum-jerk progress
    bump = rng.normal(0, 0.08) * distance * np.sin(np.pi * s)  # sideways curvature
    along = s * distance
    c, si = np.cos(angle), np.sin(angle)
    x = start[0] + along * c - bump * si + rng.normal(0, 0.4, n)
    y = start[1] + along * si + bump * c + rng.normal(0, 0.4, n)
    x[0], y[0] = start
    x[-1], y[-1] = start[0] + distance * c, start[1] + distance * si
    return np.column_stack([t, np.round(x), np.round(y)])


def synthetic_segments(
    n: int, seed: int = 0, d_range: tuple[float, float] = (20.0, 1200.0), n_users: int = 6
) -> list[Segment]:
    """``n`` movements with log-uniform distances, spread over ``n_users`` fake users."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        d = float(np.exp(rng.uniform(np.log(d_range[0]), np.log(d_range[1]))))
        start = (rng.uniform(600, 1000), rng.uniform(300, 600))
        pts = minimum_jerk_path(d, rng.uniform(-np.pi, np.pi), rng, start=start)
        out.append(Segment(pts, f"synth{i % n_users}", "session0", "Left_click"))
    return out


def write_sapimouse_log(path: str | Path, segments: list[Segment], gap_ms: float = 300.0) -> None:
    """Write movements as a SapiMouse-style CSV: Released, Moves, Pressed for each."""
    lines = ["client timestamp,button,state,x,y"]
    t0 = 1000.0
    for seg in segments:
        p = seg.points
        ts = t0 + p[:, 0] - p[0, 0]
        lines.append(f"{int(ts[0])},Left,Released,{int(p[0, 1])},{int(p[0, 2])}")
        moves = zip(ts[1:-1], p[1:-1, 1], p[1:-1, 2], strict=True)
        lines += [f"{int(t)},NoButton,Move,{int(x)},{int(y)}" for t, x, y in moves]
        lines.append(f"{int(ts[-1])},Left,Pressed,{int(p[-1, 1])},{int(p[-1, 2])}")
        t0 = ts[-1] + gap_ms
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    if str(path).endswith(".gz"):
        Path(path).write_bytes(gzip.compress(text.encode()))
    else:
        Path(path).write_text(text)
