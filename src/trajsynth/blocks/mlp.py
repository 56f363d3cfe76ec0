"""Vector networks of stage 2: conditional generators and WGAN critics.

All take a condition (B, C) through a small embedding MLP. Hidden layers are
Linear → LayerNorm → LeakyReLU(0.2); critics use LayerNorm, not BatchNorm,
because the gradient penalty is defined per sample (Gulrajani et al. 2017).
"""

from __future__ import annotations

import torch
from torch import nn

GENERATOR_TYPES = ("mlp", "film")
CRITIC_TYPES = ("mlp", "projection", "multiscale")


def condition_embedding(condition_dim: int, embed_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(condition_dim, embed_dim), nn.LeakyReLU(0.2), nn.Linear(embed_dim, embed_dim))


def hidden_block(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out), nn.LayerNorm(d_out), nn.LeakyReLU(0.2))


class MLPGenerator(nn.Module):
    """(noise (B, N), condition (B, C)) → summary (B, S) in [-1, 1]; condition concatenated."""

    def __init__(self, noise_dim: int, condition_dim: int, summary_dim: int, hidden_dims, embed_dim: int = 64):
        super().__init__()
        self.embed = condition_embedding(condition_dim, embed_dim)
        dims = [noise_dim + embed_dim, *hidden_dims]
        self.body = nn.Sequential(*(hidden_block(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)))
        self.out = nn.Linear(dims[-1], summary_dim)

    def forward(self, noise: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        x = torch.cat([noise, self.embed(condition)], dim=-1)  # (B, N + E)
        return torch.tanh(self.out(self.body(x)))


class FiLMGenerator(nn.Module):
    """Condition modulates every hidden layer: h ← γ(c) ⊙ LayerNorm(W h) + β(c) (Perez et al. 2018)."""

    def __init__(self, noise_dim: int, condition_dim: int, summary_dim: int, hidden_dims, embed_dim: int = 64):
        super().__init__()
        self.embed = condition_embedding(condition_dim, embed_dim)
        dims = [noise_dim, *hidden_dims]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.norms = nn.ModuleList(nn.LayerNorm(b, elementwise_affine=False) for b in dims[1:])
        self.films = nn.ModuleList(nn.Linear(embed_dim, 2 * b) for b in dims[1:])
        self.act = nn.LeakyReLU(0.2)
        self.out = nn.Linear(dims[-1], summary_dim)

    def forward(self, noise: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        e = self.embed(condition)  # (B, E)
        h = noise
        for lin, norm, film in zip(self.linears, self.norms, self.films, strict=True):
            gamma, beta = film(e).chunk(2, dim=-1)  # (B, H) each
            h = self.act(norm(lin(h)) * (1 + gamma) + beta)
        return torch.tanh(self.out(h))


class MLPCritic(nn.Module):
    """(summary (B, S), condition (B, C)) → score (B, 1), no sigmoid."""

    def __init__(self, summary_dim: int, condition_dim: int, hidden_dims, embed_dim: int = 64):
        super().__init__()
        self.embed = condition_embedding(condition_dim, embed_dim)
        dims = [summary_dim + embed_dim, *hidden_dims]
        self.body = nn.Sequential(*(hidden_block(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)))
        self.out = nn.Linear(dims[-1], 1)

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(torch.cat([z, self.embed(condition)], dim=-1)))


class ProjectionCritic(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018): ψ(φ(z)) + ⟨embed(c), φ(z)⟩."""

    def __init__(self, summary_dim: int, condition_dim: int, hidden_dims, embed_dim: int = 64):
        super().__init__()
        dims = [summary_dim, *hidden_dims]
        self.body = nn.Sequential(*(hidden_block(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)))
        self.out = nn.Linear(dims[-1], 1)
        self.embed = condition_embedding(condition_dim, dims[-1])

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        phi = self.body(z)  # (B, H)
        return self.out(phi) + (self.embed(condition) * phi).sum(-1, keepdim=True)


class MultiscaleCritic(nn.Module):
    """Scores read at every depth and averaged: shallow heads judge coarse statistics,
    deep ones fine structure, and the shallow heads keep gradients flowing early on."""

    def __init__(self, summary_dim: int, condition_dim: int, hidden_dims, embed_dim: int = 64):
        super().__init__()
        self.embed = condition_embedding(condition_dim, embed_dim)
        dims = [summary_dim + embed_dim, *hidden_dims]
        self.blocks = nn.ModuleList(hidden_block(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.heads = nn.ModuleList(nn.Linear(b, 1) for b in dims[1:])

    def forward(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, self.embed(condition)], dim=-1)
        scores = []
        for block, head in zip(self.blocks, self.heads, strict=True):
            h = block(h)
            scores.append(head(h))
        return torch.stack(scores, 0).mean(0)  # (B, 1)


def build_generator(kind: str, **kw) -> nn.Module:
    classes = {"mlp": MLPGenerator, "film": FiLMGenerator}
    if kind not in classes:
        raise ValueError(f"generator_type must be one of {GENERATOR_TYPES}, got {kind!r}")
    return classes[kind](**kw)


def build_critic(kind: str, **kw) -> nn.Module:
    classes = {"mlp": MLPCritic, "projection": ProjectionCritic, "multiscale": MultiscaleCritic}
    if kind not in classes:
        raise ValueError(f"critic_type must be one of {CRITIC_TYPES}, got {kind!r}")
    return classes[kind](**kw)


class SummaryHead(nn.Module):
    """Small MLP read-out from a summary (length logits, condition estimate)."""

    def __init__(self, summary_dim: int, out_dim: int, hidden_dim: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(summary_dim, hidden_dim), nn.LeakyReLU(0.2), nn.Linear(hidden_dim, out_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
