"""Recurrent encoders, decoders and per-step networks over right-padded sequences.

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


RNN_MODULES = ("gru", "lstm")
ACTIVATIONS = ("sigmoid", "tanh", "none")


class StackedRecurrent(nn.Module):
    """Sequence (B, T, in_dim) → GRU or LSTM stack → per-step linear → activation → (B, T, out_dim).

    The TimeGAN networks: one recurrent stack and one dense layer each. Unidirectional, so on
    right-padded input the outputs at valid steps never see the padding.
    """

    def __init__(self, in_dim: int, hidden_dim: int, num_layers: int, out_dim: int, module: str = "gru",
                 activation: str = "sigmoid"):
        super().__init__()
        if module not in RNN_MODULES:
            raise ValueError(f"module must be one of {RNN_MODULES}, got {module!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        rnn = nn.GRU if module == "gru" else nn.LSTM
        self.rnn = rnn(in_dim, hidden_dim, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_dim, out_dim)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(x)  # (B, T, H)
        y = self.out(y)  # (B, T, out_dim)
        if self.activation == "sigmoid":
            return torch.sigmoid(y)
        return torch.tanh(y) if self.activation == "tanh" else y
