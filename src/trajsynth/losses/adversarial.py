"""The standard (non-saturating) GAN loss on per-step discriminator logits of right-padded sequences."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_bce_logits(logits: torch.Tensor, target: float, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of per-step logits (B, T, 1) against a constant label, over valid steps (B, T)."""
    m = mask.unsqueeze(-1).to(logits.dtype)  # (B, T, 1)
    bce = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none")
    return (bce * m).sum() / m.sum().clamp_min(1.0)
