"""The DDPM noise schedule (cosine or linear), the forward process, and the two samplers (DDIM, ancestral DDPM).

Everything works on latents x (B, D) and on sequences (B, T, D) alike. A sampler takes ``eps(x_t, t)`` → predicted
noise of x_t's shape, so the guidance and the choice of weights stay with the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

Eps = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t (B, D), t (B,) int64) → ε̂ (B, D)
Clip = Callable[[torch.Tensor], torch.Tensor]  # x̂0 (B, D) → x̂0 inside the data's range


def make_betas(kind: str, T: int) -> torch.Tensor:
    """β_1..β_T (T,) float64: ``linear`` 1e-4 → 0.02 scaled to T (Ho et al.), or ``cosine`` (Nichol & Dhariwal)."""
    if kind == "linear":
        scale = 1000.0 / T
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64).clamp_max(0.999)
    s = 0.008
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    abar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)


class NoiseSchedule(nn.Module):
    """ᾱ_t and the posterior variances of a schedule, as non-persistent buffers (rebuilt from the config)."""

    def __init__(self, kind: str, T: int):
        super().__init__()
        betas = make_betas(kind, T)
        abar = torch.cumprod(1 - betas, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        self.T = T
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("abar", abar.float(), persistent=False)
        self.register_buffer("abar_prev", abar_prev.float(), persistent=False)
        self.register_buffer("post_var", (betas * (1 - abar_prev) / (1 - abar)).float(), persistent=False)

    def _abar(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """ᾱ_t of timesteps t (B,), shaped to broadcast over x (B, ...)."""
        return self.abar[t].reshape(-1, *[1] * (x.dim() - 1))  # (B, 1) or (B, 1, 1)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε; x0, noise (B, D) or (B, T, D), t (B,)."""
        a = self._abar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The denoised estimate x̂0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t (B, D) or (B, T, D)."""
        a = self._abar(t, x_t)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()

    def ddim_times(self, steps: int) -> list[int]:
        """``steps`` timesteps from T − 1 down to 0, evenly spaced."""
        return torch.linspace(self.T - 1, 0, steps).round().long().unique(sorted=True).flip(0).tolist()

    def _denoise(self, eps: Eps, x: torch.Tensor, t: int, clip: Clip | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂0, ε̂) at step t, x̂0 clipped to the data's range and ε̂ made consistent with it.

        Near t = T, ᾱ_t is nearly 0 (cosine schedule) and x̂0 divides the denoiser's error by √ᾱ_t: unclipped,
        the first steps throw the sample far outside the data.
        """
        tt = torch.full((len(x),), t, dtype=torch.long, device=x.device)
        e = eps(x, tt)
        x0 = self.predict_x0(x, tt, e)
        if clip is None:
            return x0, e
        x0 = clip(x0)
        a = self.abar[t]
        return x0, (x - a.sqrt() * x0) / (1 - a).sqrt()

    @torch.no_grad()
    def ddim(self, eps: Eps, x: torch.Tensor, steps: int, clip: Clip | None = None) -> torch.Tensor:
        """Deterministic DDIM (η = 0) from noise x (B, D) in ``steps`` model calls → x0 (B, D)."""
        times = self.ddim_times(steps)
        for i, t in enumerate(times):
            x0, e = self._denoise(eps, x, t, clip)
            a_prev = self.abar[times[i + 1]] if i + 1 < len(times) else x.new_tensor(1.0)
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * e
        return x

    @torch.no_grad()
    def ddpm(self, eps: Eps, x: torch.Tensor, rng: torch.Generator | None = None, clip: Clip | None = None
             ) -> torch.Tensor:
        """Ancestral DDPM from noise x (B, D) over all T steps (posterior variance β̃_t) → x0 (B, D)."""
        for t in range(self.T - 1, -1, -1):
            x0, _ = self._denoise(eps, x, t, clip)
            a, a_prev, beta = self.abar[t], self.abar_prev[t], self.betas[t]
            mean = (a_prev.sqrt() * beta / (1 - a)) * x0 + ((1 - beta).sqrt() * (1 - a_prev) / (1 - a)) * x
            if t > 0:
                mean = mean + self.post_var[t].sqrt() * torch.randn(x.shape, generator=rng, device=x.device)
            x = mean
        return x
