"""Masked losses over right-padded sequences and moment matching of vectors and of sequences."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over valid steps only; a, b (B, T, D), mask (B, T) bool."""
    m = mask.unsqueeze(-1).to(a.dtype)
    return ((a - b) ** 2 * m).sum() / (m.sum() * a.size(-1)).clamp_min(1.0)


def moment_matching(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Feature matching on batch statistics: MSE of per-dimension means and stds."""
    return F.mse_loss(fake.mean(0), real.mean(0)) + F.mse_loss(fake.std(0), real.std(0))


def masked_moment_gap(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """TimeGAN's two moments: mean |σ̂ − σ| and mean |μ̂ − μ| of each (step, feature) over the batch.

    fake, real (B, T, F) share the valid steps ``mask`` (B, T) bool (the generator runs for the real
    batch's lengths); statistics of step t use the sequences still going at t, and steps no sequence
    reaches do not count. The variance is the population one, σ = √(var + eps) as in the original.
    """
    m = mask.unsqueeze(-1).to(fake.dtype)  # (B, T, 1)
    n = m.sum(0)  # (T, 1) sequences at each step
    alive = (n > 0).to(fake.dtype)  # (T, 1)
    n = n.clamp_min(1.0)
    gaps = []
    for stat in (_masked_std, _masked_mean):
        gap = (stat(fake, m, n, eps) - stat(real, m, n, eps)).abs() * alive  # (T, F)
        gaps.append(gap.sum() / (alive.sum() * fake.size(-1)).clamp_min(1.0))
    return gaps[0], gaps[1]


def _masked_mean(x: torch.Tensor, m: torch.Tensor, n: torch.Tensor, eps: float) -> torch.Tensor:
    return (x * m).sum(0) / n  # (T, F)


def _masked_std(x: torch.Tensor, m: torch.Tensor, n: torch.Tensor, eps: float) -> torch.Tensor:
    mean = (x * m).sum(0, keepdim=True) / n  # (1, T, F)
    return ((((x - mean) ** 2) * m).sum(0) / n + eps).sqrt()  # (T, F)
