"""Per-step latent noise for a sequence decoder: a variational residual on top of a deterministic latent sequence.

A decoder fed only the latent sequence that one summary vector expands to can only return the
mean movement for that summary: what the summary does not hold (the small speed changes,
corrections and jitter of each step) is averaged away, and the output is smoother than any human
movement. Here each step t gets a small random vector r_t on top of the expanded latent h_t:

* in training it is drawn from a posterior q(r_t | x_t, h_t), which sees the real step x_t (the
  step's own speed, heading, interval …), so r_t carries what the summary left out of that step;
* in generation it is drawn from a prior p(r_t | h_t), learned with the KL term
  KL(q ‖ p) that training adds to the reconstruction loss.

The decoder then reads h_t + W r_t. The prior depends on h_t only, so the draws of all steps are
made at once (no loop over time); the recurrent decoder turns them into correlated detail.
"""

from __future__ import annotations

import torch
from torch import nn

from .masks import masked_step_mean


class StepNoise(nn.Module):
    """Posterior and prior Gaussians of the per-step residual r_t (noise_dim) and its map into the latent."""

    def __init__(self, feature_dim: int, latent_dim: int, noise_dim: int, hidden_dim: int = 64):
        super().__init__()
        self.noise_dim = noise_dim
        self.posterior_net = nn.Sequential(nn.Linear(feature_dim + latent_dim, hidden_dim), nn.GELU(),
                                           nn.Linear(hidden_dim, 2 * noise_dim))
        self.prior_net = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.GELU(),
                                       nn.Linear(hidden_dim, 2 * noise_dim))
        self.to_latent = nn.Linear(noise_dim, latent_dim, bias=False)

    @staticmethod
    def _gaussian(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = params.chunk(2, dim=-1)
        return mean, log_std.clamp(-6.0, 3.0)  # bounded: a collapsing or exploding std never gives NaN

    def posterior(self, x: torch.Tensor, h: torch.Tensor, mask: torch.Tensor,
                  rng: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Real steps x (B, T, F) and latents h (B, T, D) → (h + W r (B, T, D), mean KL per valid step)."""
        q_mean, q_log_std = self._gaussian(self.posterior_net(torch.cat([x, h], dim=-1)))  # (B, T, N) each
        p_mean, p_log_std = self._gaussian(self.prior_net(h))
        eps = torch.randn(q_mean.shape, device=h.device, generator=rng)
        r = q_mean + q_log_std.exp() * eps  # (B, T, N) reparameterised draw
        # KL of two diagonal Gaussians, summed over the noise dimensions: (B, T)
        kl = (p_log_std - q_log_std + ((q_log_std.exp() ** 2 + (q_mean - p_mean) ** 2)
                                        / (2 * (2 * p_log_std).exp())) - 0.5).sum(-1)
        return h + self.to_latent(r), masked_step_mean(kl, mask)

    def prior(self, h: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
        """Latents h (B, T, D) → h + W r with r drawn from the prior, every step at once."""
        p_mean, p_log_std = self._gaussian(self.prior_net(h))
        eps = torch.randn(p_mean.shape, device=h.device, generator=rng)
        return h + self.to_latent(p_mean + p_log_std.exp() * eps)
