"""Length masks for right-padded sequences, and means over their valid steps."""

from __future__ import annotations

import torch


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths → (B, T) bool mask, True on valid steps."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_step_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of per-step values (B, T) over the valid steps of ``mask`` (B, T); 0 when none is valid."""
    return (values * mask).sum() / mask.sum().clamp_min(1)
