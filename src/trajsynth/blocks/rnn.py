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
INITS = ("torch", "tf1")


def _glorot_(w: torch.Tensor, fan_in: int, fan_out: int) -> None:
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    nn.init.uniform_(w, -bound, bound)


@torch.no_grad()
def tf1_init_(rnn: nn.GRU | nn.LSTM, out: nn.Linear) -> None:
    """TensorFlow 1's defaults for its recurrent cells and dense layers, on torch's modules.

    TF1 draws each cell's kernel over the concatenated [input, state] from one Glorot-uniform
    range (fans: input + hidden, and the gates' total width), starts a GRU's reset and update gates
    at bias 1 (so a fresh GRU keeps about 73 % of its state per step, where torch's small uniform
    start keeps half) and an LSTM's forget gate at 1, other biases and the dense layer's at 0.
    """
    H, gates = rnn.hidden_size, (2 if isinstance(rnn, nn.GRU) else 4)
    for k in range(rnn.num_layers):
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")
        b_ih, b_hh = getattr(rnn, f"bias_ih_l{k}"), getattr(rnn, f"bias_hh_l{k}")
        fan_in = w_ih.size(1) + H
        b_ih.zero_()
        b_hh.zero_()
        if isinstance(rnn, nn.GRU):  # rows: reset, update, candidate
            for w in (w_ih, w_hh):
                _glorot_(w[: 2 * H], fan_in, 2 * H)
                _glorot_(w[2 * H :], fan_in, H)
            b_ih[: 2 * H] = 1.0
        else:  # rows: input, forget, cell, output
            for w in (w_ih, w_hh):
                _glorot_(w, fan_in, gates * H)
            b_ih[H : 2 * H] = 1.0
    nn.init.xavier_uniform_(out.weight)
    out.bias.zero_()


class StackedRecurrent(nn.Module):
    """Sequence (B, T, in_dim) → GRU or LSTM stack → per-step linear → activation → (B, T, out_dim).

    The TimeGAN networks: one recurrent stack and one dense layer each. Unidirectional, so on
    right-padded input the outputs at valid steps never see the padding.
    """

    def __init__(self, in_dim: int, hidden_dim: int, num_layers: int, out_dim: int, module: str = "gru",
                 activation: str = "sigmoid", init: str = "torch"):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if module not in RNN_MODULES:
            raise ValueError(f"module must be one of {RNN_MODULES}, got {module!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        rnn = nn.GRU if module == "gru" else nn.LSTM
        self.rnn = rnn(in_dim, hidden_dim, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_dim, out_dim)
        self.activation = activation
        if init == "tf1":
            tf1_init_(self.rnn, self.out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(x)  # (B, T, H)
        y = self.out(y)  # (B, T, out_dim)
        if self.activation == "sigmoid":
            return torch.sigmoid(y)
        return torch.tanh(y) if self.activation == "tanh" else y
