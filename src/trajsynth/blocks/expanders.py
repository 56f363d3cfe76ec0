"""Expanders: summary z (B, S) → latent sequence (B, T, latent_dim) in [-1, 1].

``lstm`` is the design's autoregressive LSTM (one step at a time, its own
output fed back). ``parallel`` is non-autoregressive: an LSTM whose initial
state comes from z and whose inputs are z, a learned position embedding and the
position relative to the sequence's length, so all T steps run in one fused
call. ``mlp`` maps z to all steps at once; ``repeat`` copies z to every step and
projects it with the position.
"""

from __future__ import annotations

import torch
from torch import nn

EXPAND_TYPES = ("parallel", "lstm", "mlp", "repeat")


def _position_inputs(T: int, lengths: torch.Tensor | None, max_len: int, B: int, device) -> torch.Tensor:
    """(B, T, 2): position relative to the length, and steps left, scaled by max_len."""
    t = torch.arange(T, device=device, dtype=torch.float32)[None, :].expand(B, T)  # (B, T)
    L = (lengths if lengths is not None else torch.full((B,), T, device=device)).float()[:, None]
    rel = t / (L - 1).clamp_min(1.0)
    left = (L - 1 - t) / max_len
    return torch.stack([rel, left], dim=-1)


class _InitState(nn.Module):
    """z → (h0, c0) for a multi-layer LSTM."""

    def __init__(self, summary_dim: int, hidden_dim: int, num_layers: int):
        super().__init__()
        self.h = nn.Linear(summary_dim, hidden_dim * num_layers)
        self.c = nn.Linear(summary_dim, hidden_dim * num_layers)
        self.num_layers = num_layers

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = z.size(0)
        h0 = torch.tanh(self.h(z)).view(B, self.num_layers, -1).transpose(0, 1).contiguous()  # (layers, B, H)
        c0 = self.c(z).view(B, self.num_layers, -1).transpose(0, 1).contiguous()
        return h0, c0


class AutoregressiveLSTMExpander(nn.Module):
    """The design's expander: a Python loop over time steps (slow, kept as a reference)."""

    def __init__(self, summary_dim: int, latent_dim: int, hidden_dim: int, num_layers: int, max_len: int):
        super().__init__()
        self.init = _InitState(summary_dim, hidden_dim, num_layers)
        self.lstm = nn.LSTM(latent_dim, hidden_dim, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_dim, latent_dim)
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor, T: int, lengths: torch.Tensor | None = None) -> torch.Tensor:
        state = self.init(z)
        prev = z.new_zeros(z.size(0), 1, self.latent_dim)  # start token
        steps = []
        for _ in range(T):
            y, state = self.lstm(prev, state)
            prev = torch.tanh(self.out(y))  # (B, 1, latent)
            steps.append(prev)
        return torch.cat(steps, dim=1)  # (B, T, latent)


class ParallelLSTMExpander(nn.Module):
    """Non-autoregressive LSTM expander: one fused call over all steps."""

    def __init__(self, summary_dim: int, latent_dim: int, hidden_dim: int, num_layers: int, max_len: int):
        super().__init__()
        self.init = _InitState(summary_dim, hidden_dim, num_layers)
        self.pos = nn.Embedding(max_len, hidden_dim)
        self.inp = nn.Linear(summary_dim + 2, hidden_dim)
        self.lstm = nn.LSTM(hidden_dim, hidden_dim, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_dim, latent_dim)
        self.max_len = max_len

    def forward(self, z: torch.Tensor, T: int, lengths: torch.Tensor | None = None) -> torch.Tensor:
        B = z.size(0)
        rel = _position_inputs(T, lengths, self.max_len, B, z.device)  # (B, T, 2)
        x = self.inp(torch.cat([z[:, None, :].expand(B, T, -1), rel], dim=-1))  # (B, T, H)
        x = x + self.pos.weight[:T][None]
        y, _ = self.lstm(x, self.init(z))  # (B, T, H)
        return torch.tanh(self.out(y))


class MLPExpander(nn.Module):
    """z → all max_len steps at once through an MLP; the first T are used."""

    def __init__(self, summary_dim: int, latent_dim: int, hidden_dim: int, num_layers: int, max_len: int):
        super().__init__()
        layers, d = [], summary_dim
        for _ in range(max(1, num_layers)):
            layers += [nn.Linear(d, hidden_dim * 2), nn.LeakyReLU(0.2)]
            d = hidden_dim * 2
        self.net = nn.Sequential(*layers, nn.Linear(d, max_len * latent_dim))
        self.max_len, self.latent_dim = max_len, latent_dim

    def forward(self, z: torch.Tensor, T: int, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.net(z).view(z.size(0), self.max_len, self.latent_dim)[:, :T]  # (B, T, latent)
        return torch.tanh(h)


class RepeatExpander(nn.Module):
    """z copied to every step, mixed with the position by a per-step MLP."""

    def __init__(self, summary_dim: int, latent_dim: int, hidden_dim: int, num_layers: int, max_len: int):
        super().__init__()
        self.pos = nn.Embedding(max_len, hidden_dim)
        self.inp = nn.Linear(summary_dim + 2, hidden_dim)
        self.net = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(hidden_dim, hidden_dim), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden_dim, latent_dim))
        self.max_len = max_len

    def forward(self, z: torch.Tensor, T: int, lengths: torch.Tensor | None = None) -> torch.Tensor:
        B = z.size(0)
        rel = _position_inputs(T, lengths, self.max_len, B, z.device)
        x = self.inp(torch.cat([z[:, None, :].expand(B, T, -1), rel], dim=-1)) + self.pos.weight[:T][None]
        return torch.tanh(self.net(x))  # (B, T, latent)


def build_expander(expand_type: str, **kw) -> nn.Module:
    classes = {"parallel": ParallelLSTMExpander, "lstm": AutoregressiveLSTMExpander,
               "mlp": MLPExpander, "repeat": RepeatExpander}
    if expand_type not in classes:
        raise ValueError(f"expand_type must be one of {EXPAND_TYPES}, got {expand_type!r}")
    return classes[expand_type](**kw)
