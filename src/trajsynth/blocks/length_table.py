"""Sequence lengths drawn per condition from a table of the training lengths.

A model that generates every step of a sequence for a given length (TimeGAN, whose networks run for
the lengths they are handed) needs the length from elsewhere. The table bins the training
conditions into equal-count bins and keeps, per bin, quantiles of its sequences' lengths; a
length is one of its bin's quantiles, drawn uniformly. All of it lives in buffers, so a checkpoint
carries it and generation needs no data.
"""

from __future__ import annotations

import torch
from torch import nn


class LengthTable(nn.Module):
    def __init__(self, bins: int, quantiles: int, max_len: int):
        super().__init__()
        self.register_buffer("edges", torch.zeros(bins - 1))  # (bins - 1,) inner edges of the condition bins
        # (bins, quantiles) lengths; before fit: every sequence full length
        self.register_buffer("table", torch.full((bins, quantiles), max_len, dtype=torch.int64))

    def bin_of(self, c: torch.Tensor) -> torch.Tensor:
        """Conditions (n,) → bin indices (n,) in [0, bins)."""
        return torch.bucketize(c.to(self.edges.dtype), self.edges, right=True)

    @torch.no_grad()
    def fit(self, c: torch.Tensor, lengths: torch.Tensor) -> None:
        """Fill the table from the training conditions (N,) and lengths (N,).

        Tied conditions (e.g. one constant condition) leave some bins empty; those take the
        quantiles of all lengths.
        """
        bins, q = self.table.shape
        c = c.reshape(-1).to(torch.float64)
        probs = torch.linspace(0, 1, bins + 1, dtype=torch.float64)[1:-1]
        self.edges.copy_(torch.quantile(c, probs).to(self.edges.dtype))
        where = self.bin_of(c)  # (N,)
        levels = (torch.arange(q, dtype=torch.float64) + 0.5) / q  # (q,) mid-quantiles
        for b in range(bins):
            inside = lengths[where == b]
            pool = inside if len(inside) else lengths
            self.table[b] = torch.quantile(pool.to(torch.float64), levels, interpolation="nearest").round().long()

    def sample(self, c: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
        """One length per condition c (n,) → (n,) int64, each a uniform draw among its bin's quantiles."""
        pick = torch.randint(self.table.size(1), (len(c),), generator=rng)
        return self.table[self.bin_of(c.reshape(-1)), pick]
