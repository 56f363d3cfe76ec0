"""Temporal convolutional network: dilated causal 1-D convolutions in residual blocks (Bai et al. 2018).

Each block is two weight-normalised causal convolutions with ReLU and dropout, plus a residual
path (a 1×1 convolution where the widths differ). Block i dilates by 2^i, so the receptive field
grows exponentially with depth. Causal: step t sees steps ≤ t only, so right padding never reaches
a valid step. Also the gradient-reversal layer of domain-adversarial training (Ganin et al. 2016).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


class CausalConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = weight_norm(nn.Conv1d(c_in, c_out, kernel, dilation=dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, T) → (B, C_out, T)
        return self.conv(F.pad(x, (self.pad, 0)))


class TemporalBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(CausalConv(c_in, c_out, kernel, dilation), nn.ReLU(), nn.Dropout(dropout),
                                 CausalConv(c_out, c_out, kernel, dilation), nn.ReLU(), nn.Dropout(dropout))
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, T) → (B, C_out, T)
        return torch.relu(self.net(x) + self.residual(x))


class TCN(nn.Module):
    """(B, T, C_in) → (B, T, channels[-1]); block i has width channels[i] and dilation 2^i."""

    def __init__(self, c_in: int, channels: list[int], kernel: int, dropout: float):
        super().__init__()
        widths = [c_in, *channels]
        self.blocks = nn.Sequential(*(TemporalBlock(widths[i], widths[i + 1], kernel, 2**i, dropout)
                                      for i in range(len(channels))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x.transpose(1, 2)).transpose(1, 2)


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.alpha * grad, None


def reverse_gradient(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Identity forwards; the gradient multiplied by −alpha backwards."""
    return _Reverse.apply(x, alpha)
