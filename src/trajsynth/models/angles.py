"""Directions drawn like the training movements': a histogram bin by its frequency, uniform within it."""

from __future__ import annotations

import math

import torch


def draw_angles(hist: torch.Tensor, n: int, rng: torch.Generator | None) -> torch.Tensor:
    """n angles (n,) rad float64 from ``hist`` (B,) counts over B equal bins of [-π, π)."""
    cdf = (hist.cumsum(0) / hist.sum()).contiguous()
    u = torch.rand(n, 2, generator=rng, dtype=torch.float64)
    b = torch.searchsorted(cdf, u[:, 0].contiguous(), right=True).clamp_max(len(cdf) - 1)
    return -math.pi + (b + u[:, 1]) * (2 * math.pi / len(cdf))
