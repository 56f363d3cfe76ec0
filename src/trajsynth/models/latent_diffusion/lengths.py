"""The lengths of sequence latents: drawn before the diffusion, from the training lengths of the condition's bin.

A latent sequence's length is its mask, so the U-Net needs it before it starts; the summary path reads it
off the summary with the autoencoder's length head, but there is no summary here. The training movements'
lengths are counted per bin of the condition's first column (the distance of a mouse movement: longer
movements take more events), bins holding equal shares of the training movements.
"""

from __future__ import annotations

import torch
from torch import nn

LENGTH_BINS = 16  # distance bins of the length table


class LengthTable(nn.Module):
    def __init__(self, max_len: int, bins: int = LENGTH_BINS):
        super().__init__()
        self.register_buffer("edges", torch.zeros(bins - 1))  # inner bin edges of condition[:, 0]
        self.register_buffer("counts", torch.zeros(bins, max_len, dtype=torch.float64))  # lengths 1..max_len

    def bins(self, condition: torch.Tensor) -> torch.Tensor:
        """The bin (B,) of each condition (B, C) by its first column."""
        return torch.bucketize(condition[:, 0].contiguous(), self.edges)

    def fit(self, condition: torch.Tensor, lengths: torch.Tensor) -> None:
        """Count the training lengths (N,) per bin of the training conditions (N, C)."""
        q = torch.linspace(0, 1, len(self.edges) + 2)[1:-1]
        self.edges.copy_(torch.quantile(condition[:, 0].float(), q))
        b = self.bins(condition)
        counts = torch.zeros_like(self.counts)
        counts.index_put_((b, (lengths - 1).clamp(0, counts.size(1) - 1)), torch.ones(len(b), dtype=counts.dtype),
                          accumulate=True)
        self.counts.copy_(counts + (counts.sum(1, keepdim=True) == 0))  # an empty bin: any length

    @property
    def fitted(self) -> bool:
        return bool(self.counts.sum() > 0)

    def draw(self, condition: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
        """Lengths (B,) in 1..max_len for conditions (B, C)."""
        if not self.fitted:
            raise RuntimeError("this sequence model's length table is empty: it was never trained")
        probs = self.counts[self.bins(condition)]  # (B, max_len)
        return torch.multinomial(probs, 1, generator=rng).squeeze(1) + 1
