"""WGAN-GP losses (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs")."""

from __future__ import annotations

import torch


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, condition: torch.Tensor,
                     generator: torch.Generator | None = None, alpha: torch.Tensor | None = None) -> torch.Tensor:
    """E[(‖∇_x̂ D(x̂, c)‖₂ − 1)²] at random points x̂ between real and fake summaries.

    ``alpha`` (B, 1) are the mixing weights when the caller draws them (data-parallel training
    draws one batch for all processes and hands each its slice); else they come from ``generator``.
    """
    if alpha is None:
        alpha = torch.rand(real.size(0), 1, device=real.device, generator=generator)  # (B, 1)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)  # (B, S)
    (grad,) = torch.autograd.grad(critic(x_hat, condition).sum(), x_hat, create_graph=True)  # (B, S)
    return ((grad.norm(2, dim=1) - 1) ** 2).mean()


def critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """E[D(fake)] − E[D(real)]; its negative estimates the Wasserstein distance."""
    return d_fake.mean() - d_real.mean()


def generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    return -d_fake.mean()
