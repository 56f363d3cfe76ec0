"""Masked losses over right-padded sequences and moment matching of vectors."""

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
