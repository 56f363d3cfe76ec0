"""Poolers: latent sequence (B, T, D) + lengths → one summary vector (B, S) in [-1, 1]."""

from __future__ import annotations

import torch
from torch import nn

from .masks import length_mask

POOL_TYPES = ("attention", "mean", "last", "hybrid")


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0)  # (B, D)


def last_valid(h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    idx = (lengths - 1).clamp_min(0).view(-1, 1, 1).expand(-1, 1, h.size(-1))
    return h.gather(1, idx).squeeze(1)  # (B, D)


class LatentPooler(nn.Module):
    """``attention``: masked softmax over time; ``mean``; ``last``; ``hybrid``: last+mean+max."""

    def __init__(self, latent_dim: int, summary_dim: int, pool_type: str = "attention"):
        super().__init__()
        if pool_type not in POOL_TYPES:
            raise ValueError(f"pool_type must be one of {POOL_TYPES}, got {pool_type!r}")
        self.pool_type = pool_type
        if pool_type == "attention":
            self.score = nn.Sequential(nn.Linear(latent_dim, latent_dim // 2), nn.Tanh(), nn.Linear(latent_dim // 2, 1))
        in_dim = 3 * latent_dim if pool_type == "hybrid" else latent_dim
        self.project = nn.Linear(in_dim, summary_dim)

    def forward(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, h.size(1))  # (B, T)
        if self.pool_type == "attention":
            scores = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, T)
            pooled = (torch.softmax(scores, dim=1).unsqueeze(-1) * h).sum(1)  # (B, D)
        elif self.pool_type == "mean":
            pooled = masked_mean(h, mask)
        elif self.pool_type == "last":
            pooled = last_valid(h, lengths)
        else:
            h_max = h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)  # (B, D)
            pooled = torch.cat([last_valid(h, lengths), masked_mean(h, mask), h_max], dim=-1)
        return torch.tanh(self.project(pooled))  # (B, S)
