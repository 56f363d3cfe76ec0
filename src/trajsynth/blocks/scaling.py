"""Per-feature min–max scaling fitted on training sequences, held in buffers (it travels with the weights)."""

from __future__ import annotations

import torch
from torch import nn

from .masks import length_mask

EPS = 1e-7  # as the TimeGAN code's MinMaxScaler: a constant feature maps to 0, not to NaN


class MinMaxScaler(nn.Module):
    """Each feature's range over the valid steps of the training sequences, mapped onto [0, 1] or [-1, 1].

    Before :meth:`fit` the range is [-1, 1], the project's feature range.
    """

    def __init__(self, features: int):
        super().__init__()
        self.register_buffer("lo", torch.full((features,), -1.0))
        self.register_buffer("hi", torch.full((features,), 1.0))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        """x (N, T, F) right-padded, lengths (N,): the range of every feature over valid steps."""
        valid = x[length_mask(lengths, x.size(1))]  # (steps, F)
        self.lo.copy_(valid.amin(0))
        self.hi.copy_(valid.amax(0))

    def to_unit(self, x: torch.Tensor, symmetric: bool = False) -> torch.Tensor:
        """(…, F) → [0, 1] over the fitted range ([-1, 1] if ``symmetric``)."""
        u = (x - self.lo) / (self.hi - self.lo + EPS)
        return 2 * u - 1 if symmetric else u

    def from_unit(self, u: torch.Tensor, symmetric: bool = False) -> torch.Tensor:
        """The inverse of :meth:`to_unit`."""
        u = (u + 1) / 2 if symmetric else u
        return u * (self.hi - self.lo + EPS) + self.lo
