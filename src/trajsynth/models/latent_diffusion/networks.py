"""The embeddings every denoiser shares, the summary denoiser (residual MLP blocks) and the latent discriminator."""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps t (B,) → (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float().unsqueeze(-1) * freqs  # (B, half)
    emb = torch.cat([angles.sin(), angles.cos()], -1)
    return nn.functional.pad(emb, (0, dim - 2 * half))


class ResidualBlock(nn.Module):
    """h + MLP(LayerNorm(h) modulated by the embedding): scale and shift from (time + condition) embedding."""

    def __init__(self, hidden: int, embed_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.film = nn.Linear(embed_dim, 2 * hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb).chunk(2, -1)  # (B, H) each
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)


class Embedded(nn.Module):
    """The timestep and condition embeddings of a denoiser, (t (B,), condition (B, C), keep (B,) bool) → (B, E).

    Where ``keep`` is False the condition is replaced by a learned null embedding: the unconditional
    model of classifier-free guidance, trained by dropping conditions at random.
    """

    def __init__(self, condition_dim: int, embed_dim: int):
        super().__init__()
        self.embed_dim = embed_dim
        self.time = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        self.cond = nn.Sequential(nn.Linear(condition_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        self.null = nn.Parameter(torch.zeros(embed_dim))

    def embedding(self, t: torch.Tensor, condition: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        c = self.cond(condition)  # (B, E)
        if keep is not None:
            c = torch.where(keep.unsqueeze(-1), c, self.null)
        return self.time(timestep_embedding(t, self.embed_dim)) + c  # (B, E)


class Denoiser(Embedded):
    """ε̂(x_t (B, D), t (B,), condition (B, C), keep (B,) bool) → (B, D), on summary vectors."""

    def __init__(self, latent_dim: int, condition_dim: int, hidden: int, blocks: int, embed_dim: int):
        super().__init__(condition_dim, embed_dim)
        self.inp = nn.Linear(latent_dim, hidden)
        self.blocks = nn.ModuleList(ResidualBlock(hidden, embed_dim) for _ in range(blocks))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, latent_dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        emb = nn.functional.silu(self.embedding(t, condition, keep))  # (B, E)
        h = self.inp(x)  # (B, H)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)


class LatentDiscriminator(nn.Module):
    """(summary (B, D), condition (B, C)) → real-vs-generated logit (B,)."""

    def __init__(self, latent_dim: int, condition_dim: int, hidden_dims: list[int]):
        super().__init__()
        dims = [latent_dim + condition_dim, *hidden_dims]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers, nn.Linear(dims[-1], 1))

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([z, condition], -1)).squeeze(-1)
