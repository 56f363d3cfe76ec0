"""Recurrent encoder and decoder over right-padded sequences.

Padding sits after each sequence's last step and the LSTMs run forwards, so
outputs at valid steps never see padding: no packing is needed, only masks in
the pooling and the losses. One fused ``nn.LSTM`` call runs all layers and steps.
"""

from __future__ import annotations

import torch
from torch import nn


class RecurrentProjection(nn.Module):
    """Sequence (B, T, in_dim) → multi-layer LSTM → linear → tanh → (B, T, out_dim) in [-1, 1].

    Serves as the encoder (features → latent) and as the decoder (latent → features).
    """

    def __init__(self, in_dim: int, hidden_dim: int, num_layers: int, out_dim: int):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden_dim, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)  # (B, T, H)
        return torch.tanh(self.out(y))  # (B, T, out_dim)
