"""LatentDiffusion: a frozen two-stage autoencoder, a DDPM denoiser on its summaries, and a latent discriminator.

The autoencoder is the latent_wgan family's model, built through the registry from the architecture stored
in this family's config (no family imports another). Generation: condition (with a direction for a directed
autoencoder) → DDIM or ancestral DDPM on the normalised summary with the EMA denoiser and classifier-free
guidance → the autoencoder's length head, expander and decoder.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..registry import get_family
from .config import AUTOENCODER_FAMILY, LatentDiffusionArch, autoencoder_run
from .networks import Denoiser, LatentDiscriminator
from .schedule import NoiseSchedule


class LatentDiffusion(nn.Module):
    def __init__(self, cfg: LatentDiffusionArch):
        super().__init__()
        self.cfg = cfg
        ae_arch = autoencoder_run(cfg).arch
        self.autoencoder = get_family(AUTOENCODER_FAMILY).model_cls(ae_arch)
        self.directed, self.path_from = self.autoencoder.directed, self.autoencoder.path_from  # read by the sampler
        self.latent_dim = ae_arch.summary_dim
        n_cond = cfg.condition_dim + (2 if ae_arch.directed else 0)
        self.denoiser = Denoiser(self.latent_dim, n_cond, cfg.denoiser_hidden_dim, cfg.denoiser_blocks, cfg.embed_dim)
        self.ema = copy.deepcopy(self.denoiser).requires_grad_(False)  # the weights generation uses
        self.discriminator = LatentDiscriminator(self.latent_dim, n_cond, cfg.discriminator_hidden_dims)
        self.schedule = NoiseSchedule(cfg.schedule, cfg.num_timesteps)
        # the training summaries' per-dimension mean and spread: the diffusion runs on unit-scale latents
        self.register_buffer("z_mean", torch.zeros(self.latent_dim))
        self.register_buffer("z_std", torch.ones(self.latent_dim))

    # ----- latents ---------------------------------------------------------------
    def freeze_autoencoder(self) -> None:
        """No gradients into any autoencoder weight, and its parts in eval mode (they stay so in train())."""
        self.autoencoder.freeze_autoencoder()
        self.autoencoder.requires_grad_(False)

    def fit_scale(self, z: torch.Tensor) -> None:
        """Per-dimension mean and standard deviation of the training summaries z (N, S)."""
        self.z_mean.copy_(z.mean(0))
        self.z_std.copy_(z.std(0).clamp_min(1e-4))

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.z_mean) / self.z_std

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, S) clamped to the image of the pooler's range [-1, 1]."""
        return torch.maximum(torch.minimum(x, (1 - self.z_mean) / self.z_std), (-1 - self.z_mean) / self.z_std)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, S) → summaries, clamped to the pooler's tanh range."""
        return (x * self.z_std + self.z_mean).clamp(-1, 1)

    def full_condition(self, condition: torch.Tensor, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The data's condition (B, C), with each movement's direction (B, 2) for a directed autoencoder."""
        return self.autoencoder.full_condition(condition, x, lengths)

    @torch.no_grad()
    def ema_update(self, decay: float) -> None:
        """ema ← decay·ema + (1 − decay)·denoiser, one fused call over all tensors."""
        torch._foreach_lerp_(list(self.ema.parameters()), list(self.denoiser.parameters()), 1.0 - decay)

    # ----- the noise predictor ---------------------------------------------------------
    def predict_eps(self, net: Denoiser, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor,
                    keep: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂ = √(1 − ᾱ_t)·x_t + √ᾱ_t·net(x_t, t, c) (B, S): a noise predictor exact at ᾱ_t = 0.

        The network's error enters ε̂ scaled by √ᾱ_t, so the denoised estimate x̂0 = √ᾱ_t·x_t − √(1 − ᾱ_t)·net
        stays bounded at every step; a plain ε-network's x̂0 divides its error by √ᾱ_t (2·10⁻⁹ at t = T
        under the cosine schedule), which threw DDIM samples far off the data. The loss is still the MSE of ε̂.
        """
        a = self.schedule.abar[t].unsqueeze(-1)  # (B, 1)
        return (1 - a).sqrt() * x + a.sqrt() * net(x, t, condition, keep)

    # ----- sampling -----------------------------------------------------------------
    def guided_eps(self, net: Denoiser, condition: torch.Tensor, scale: float):
        """ε(x_t, t) of classifier-free guidance: ε_u + scale·(ε_c − ε_u), both in one call of ``net``."""
        if scale == 1.0:
            return lambda x, t: self.predict_eps(net, x, t, condition)
        keep = torch.cat([torch.ones(len(condition), dtype=torch.bool), torch.zeros(len(condition), dtype=torch.bool)])

        def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            e_c, e_u = self.predict_eps(net, x.repeat(2, 1), t.repeat(2), condition.repeat(2, 1), keep).chunk(2)
            return e_u + scale * (e_c - e_u)  # (B, S)
        return eps

    @torch.no_grad()
    def sample_latents(self, condition: torch.Tensor, rng: torch.Generator | None = None,
                       sampler: str | None = None, steps: int | None = None, net: Denoiser | None = None
                       ) -> torch.Tensor:
        """Normalised latents (B, S) for full conditions (B, C'): DDIM (``steps``) or ancestral DDPM."""
        sampler, steps = sampler or self.cfg.sampler, steps or self.cfg.ddim_steps
        eps = self.guided_eps(net or self.ema, condition, self.cfg.guidance_scale)
        x = torch.randn(len(condition), self.latent_dim, generator=rng, device=condition.device)
        if sampler == "ddpm":
            return self.schedule.ddpm(eps, x, rng, clip=self.clip)
        return self.schedule.ddim(eps, x, steps, clip=self.clip)

    @torch.no_grad()
    def generate(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None = None,
                 seq_len: int | None = None, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n trajectories → (x (n, max_seq_len, F) zero-padded, lengths (n,)), as the two-stage model's generate
        but with summaries drawn by the diffusion model."""
        ae = self.autoencoder
        conditions = conditions.reshape(n, -1)
        if targets is not None and not self.directed:
            raise ValueError("targets need a directed autoencoder (autoencoder directed: true)")
        if self.directed:
            conditions = torch.cat([conditions, ae._directions_for(n, targets, rng)], -1)
        z = self.denormalize(self.sample_latents(conditions, rng))  # (n, S)
        lengths = ae.sample_lengths(z, rng) if seq_len is None else torch.full((n,), int(seq_len))
        return ae.decode_bucketed(z, lengths.to(z.device), rng=rng), lengths

    # ----- the autoencoder's latent space and copies (evaluation) -----------------------
    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.embed(x, lengths)

    @property
    def reconstruction_paths(self) -> dict[str, str]:
        return self.autoencoder.reconstruction_paths

    def reconstruct(self, x: torch.Tensor, lengths: torch.Tensor, condition: torch.Tensor | None = None,
                    path: str = "bottleneck") -> tuple[torch.Tensor, torch.Tensor]:
        return self.autoencoder.reconstruct(x, lengths, condition, path)
