"""The sequence denoiser: a 1-D U-Net over time on the autoencoder's per-step latents.

Sequences are right-padded; a mask (True on valid steps) keeps the padding out of everything a valid step
sees: inputs are zeroed past each length, GroupNorm statistics count valid steps only, and every block's
output is zeroed again. So a row's output depends on its own steps and length alone, never on how far
the batch is padded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .networks import Embedded, timestep_embedding


class MaskedGroupNorm(nn.GroupNorm):
    """GroupNorm of h (B, C, T) whose mean and variance are taken over the valid steps of mask (B, 1, T)."""

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, C, T = h.shape
        g = h.reshape(B, self.num_groups, C // self.num_groups, T)  # (B, G, C/G, T)
        m = mask.reshape(B, 1, 1, T).to(h.dtype)
        n = (m.sum((2, 3), keepdim=True) * g.size(2)).clamp_min(1.0)  # (B, 1, 1, 1) valid values per group
        mean = (g * m).sum((2, 3), keepdim=True) / n
        var = (((g - mean) * m) ** 2).sum((2, 3), keepdim=True) / n
        out = ((g - mean) / (var + self.eps).sqrt()).reshape(B, C, T)
        return (out * self.weight[:, None] + self.bias[:, None]) * mask


class ResBlock1d(nn.Module):
    """GroupNorm → SiLU → Conv1d, the embedding added per channel, GroupNorm → SiLU → Conv1d, plus a skip."""

    def __init__(self, c_in: int, c_out: int, embed_dim: int, groups: int):
        super().__init__()
        self.norm1 = MaskedGroupNorm(groups, c_in)
        self.conv1 = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(embed_dim, c_out)
        self.norm2 = MaskedGroupNorm(groups, c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: torch.Tensor, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h (B, C_in, T), emb (B, E), mask (B, 1, T) → (B, C_out, T), zero past each length."""
        r = self.conv1(F.silu(self.norm1(h, mask))) + self.emb(emb).unsqueeze(-1)  # (B, C_out, T)
        r = self.conv2(F.silu(self.norm2(r * mask, mask)))
        return (self.skip(h) + r) * mask


class Level(nn.Module):
    """``blocks`` residual blocks at one resolution, the first changing the width c_in → c_out."""

    def __init__(self, c_in: int, c_out: int, blocks: int, embed_dim: int, groups: int):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock1d(c_in if i == 0 else c_out, c_out, embed_dim, groups)
                                    for i in range(blocks))

    def forward(self, h: torch.Tensor, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            h = block(h, emb, mask)
        return h


class UNet1d(Embedded):
    """ε̂(x_t (B, T, D), t (B,), condition (B, C), keep (B,) bool, mask (B, T) bool) → (B, T, D), zero past each
    length.

    ``channels`` [c_0, …, c_L]: a level of width c_i at each of L resolutions (time halved by a strided
    convolution between them) and a middle at c_L; the way up doubles time back (nearest, then a
    convolution) and reads each level's output through its skip connection. The length's sinusoidal
    embedding joins the timestep's and the condition's (it is not dropped with the condition): a block
    sees only a few steps, the length tells each of them where in the movement it is.
    """

    def __init__(self, latent_dim: int, condition_dim: int, channels: list[int], blocks: int, embed_dim: int,
                 groups: int):
        super().__init__(condition_dim, embed_dim)
        self.levels = len(channels) - 1
        self.length = nn.Linear(embed_dim, embed_dim)
        self.inp = nn.Conv1d(latent_dim, channels[0], 3, padding=1)
        widths = list(zip(channels[:-1], channels[1:], strict=True))  # (c_i, c_i+1) per level
        self.down = nn.ModuleList(Level(a, a, blocks, embed_dim, groups) for a, _ in widths)
        self.shrink = nn.ModuleList(nn.Conv1d(a, b, 3, stride=2, padding=1) for a, b in widths)
        self.middle = Level(channels[-1], channels[-1], blocks + 1, embed_dim, groups)
        self.grow = nn.ModuleList(nn.Conv1d(b, a, 3, padding=1) for a, b in widths)
        self.up = nn.ModuleList(Level(2 * a, a, blocks, embed_dim, groups) for a, _ in widths)
        self.out_norm = MaskedGroupNorm(groups, channels[0])
        self.out = nn.Conv1d(channels[0], latent_dim, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor, keep: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        mask = torch.ones(B, T, dtype=torch.bool, device=x.device) if mask is None else mask
        lengths = mask.sum(1)  # (B,)
        emb = self.embedding(t, condition, keep) + self.length(timestep_embedding(lengths, self.embed_dim))
        emb = F.silu(emb)  # (B, E)
        pad = -T % (2 ** self.levels)  # time must halve evenly at every level
        m = F.pad(mask.unsqueeze(1).to(x.dtype), (0, pad))  # (B, 1, T')
        h = self.inp(F.pad(x.transpose(1, 2), (0, pad)) * m) * m  # (B, c_0, T')
        h = self._unet(h, emb, m)
        h = self.out(F.silu(self.out_norm(h, m))) * m  # (B, D, T')
        return h[:, :, :T].transpose(1, 2)  # (B, T, D)

    def _unet(self, h: torch.Tensor, emb: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """h (B, c_0, T') → (B, c_0, T'); a coarse step is valid where either of its two fine steps is."""
        skips, masks = [], []
        for level, shrink in zip(self.down, self.shrink, strict=True):
            h = level(h, emb, m)
            skips.append(h)
            masks.append(m)
            m = F.max_pool1d(m, 2)
            h = shrink(h) * m  # (B, c_i+1, T'/2^(i+1))
        h = self.middle(h, emb, m)
        for level, grow in zip(reversed(self.up), reversed(self.grow), strict=True):
            m = masks.pop()
            h = grow(F.interpolate(h, scale_factor=2, mode="nearest")) * m  # (B, c_i, T'/2^i)
            h = level(torch.cat([h, skips.pop()], 1), emb, m)
        return h
