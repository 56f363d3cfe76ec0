"""LatentDiffusion: a frozen two-stage autoencoder, a DDPM denoiser on its latents, and a latent discriminator.

The autoencoder is the latent_wgan family's model, built through the registry from the architecture stored
in this family's config (no family imports another). Its latents are either the summaries (``latents:
summary``, the MLP denoiser) or the encoder's per-step sequences (``latents: sequence``, the 1-D U-Net).
Generation: condition (with a direction for a directed autoencoder) → DDIM or ancestral DDPM on the
normalised latents with the EMA denoiser and classifier-free guidance → for a summary the autoencoder's
length head, expander and decoder; for a sequence (its length drawn first, lengths.py) the decoder alone.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ...blocks.masks import length_mask
from ..registry import get_family
from .config import AUTOENCODER_FAMILY, LatentDiffusionArch, autoencoder_run
from .lengths import LengthTable
from .networks import Denoiser, LatentDiscriminator
from .schedule import NoiseSchedule
from .unet import UNet1d

DECODE_CHUNK = 256  # sequences decoded per call, sorted by length (the LSTM decoder's cost is per step)


class LatentDiffusion(nn.Module):
    def __init__(self, cfg: LatentDiffusionArch):
        super().__init__()
        self.cfg = cfg
        ae_arch = autoencoder_run(cfg).arch
        self.autoencoder = get_family(AUTOENCODER_FAMILY).model_cls(ae_arch)
        self.directed, self.path_from = self.autoencoder.directed, self.autoencoder.path_from  # read by the sampler
        self.sequence = cfg.latents == "sequence"
        # a summary (S,) or one step of the encoder's sequence (latent,): the last axis of every latent tensor
        self.latent_dim = ae_arch.latent_dim if self.sequence else ae_arch.summary_dim
        n_cond = cfg.condition_dim + (2 if ae_arch.directed else 0)
        self.denoiser = self._denoiser(n_cond)
        self.ema = copy.deepcopy(self.denoiser).requires_grad_(False)  # the weights generation uses
        self.discriminator = LatentDiscriminator(ae_arch.summary_dim, n_cond, cfg.discriminator_hidden_dims)
        self.schedule = NoiseSchedule(cfg.schedule, cfg.num_timesteps)
        # the training latents' per-dimension mean and spread: the diffusion runs on unit-scale latents
        self.register_buffer("z_mean", torch.zeros(self.latent_dim))
        self.register_buffer("z_std", torch.ones(self.latent_dim))
        if self.sequence:
            self.lengths = LengthTable(cfg.max_seq_len)

    def _denoiser(self, n_cond: int) -> nn.Module:
        c = self.cfg
        if self.sequence:
            return UNet1d(self.latent_dim, n_cond, c.unet_channels, c.unet_blocks, c.embed_dim, c.unet_groups)
        return Denoiser(self.latent_dim, n_cond, c.denoiser_hidden_dim, c.denoiser_blocks, c.embed_dim)

    @property
    def fitted_parts(self) -> tuple[str, ...]:
        """The parts the diffusion phase fits besides the denoiser: the latents' scale (and the length table)."""
        return ("z_mean", "z_std") + (("lengths",) if self.sequence else ())

    # ----- latents ---------------------------------------------------------------
    def freeze_autoencoder(self) -> None:
        """No gradients into any autoencoder weight, and its parts in eval mode (they stay so in train())."""
        self.autoencoder.freeze_autoencoder()
        self.autoencoder.requires_grad_(False)

    def fit_scale(self, z: torch.Tensor, lengths: torch.Tensor | None = None) -> None:
        """Per-dimension mean and standard deviation of the training summaries z (N, S), or of the valid steps of
        sequences z (N, T, D) with their lengths (N,)."""
        if lengths is not None:
            z = z[length_mask(lengths, z.size(1))]  # (valid steps, D)
        self.z_mean.copy_(z.mean(0))
        self.z_std.copy_(z.std(0).clamp_min(1e-4))

    # ----- the latents: what the autoencoder's encoder gives and its decoder takes ---------------------
    @torch.no_grad()
    def encode_latents(self, x: torch.Tensor, lengths: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """Raw latents of movements x (N, T, F): summaries (N, S), or encoder sequences (N, T, D) zero past each
        length, in length-sorted chunks cut at their longest member."""
        ae = self.autoencoder
        if not self.sequence:
            return ae.encode_all(x, lengths, chunk)
        out = x.new_zeros(len(x), x.size(1), self.latent_dim)
        order = torch.argsort(lengths, stable=True)
        for s in range(0, len(x), chunk):
            idx = order[s : s + chunk]
            L = lengths[idx]
            h = ae.encoder(x[idx, : int(L.max())])  # (b, T', D)
            out[idx, : h.size(1)] = h * length_mask(L, h.size(1)).unsqueeze(-1)
        return out

    def summarize(self, z: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Raw latents → summaries (N, S): a sequence through the frozen pooler, as the encoder's would go."""
        return self.autoencoder.pooler(z, lengths) if self.sequence else z

    def decode_latents(self, z: torch.Tensor, lengths: torch.Tensor, rng: torch.Generator | None = None
                       ) -> torch.Tensor:
        """Raw latents (n, S) or (n, T, D) → features (n, max_seq_len, F), zero past each length.

        A sequence goes through the decoder alone (the autoencoder's direct path): the per-step detail of
        the latents is what the decoder reads."""
        ae = self.autoencoder
        if not self.sequence:
            return ae.decode_bucketed(z, lengths, rng=rng)
        out = z.new_zeros(len(z), self.cfg.max_seq_len, self.cfg.feature_dim)
        order = torch.argsort(lengths)
        for s in range(0, len(z), DECODE_CHUNK):
            idx = order[s : s + DECODE_CHUNK]
            L = lengths[idx]
            T = int(L.max())
            out[idx, :T] = ae.decoder(z[idx, :T]) * length_mask(L, T).unsqueeze(-1)  # (b, T, F)
        return out

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.z_mean) / self.z_std

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, S) or (B, T, D) clamped to the image of [-1, 1] (the pooler's and the encoder's
        tanh range)."""
        return torch.maximum(torch.minimum(x, (1 - self.z_mean) / self.z_std), (-1 - self.z_mean) / self.z_std)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, S) or (B, T, D) → raw latents, clamped to the tanh range."""
        return (x * self.z_std + self.z_mean).clamp(-1, 1)

    def full_condition(self, condition: torch.Tensor, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The data's condition (B, C), with each movement's direction (B, 2) for a directed autoencoder."""
        return self.autoencoder.full_condition(condition, x, lengths)

    @torch.no_grad()
    def ema_update(self, decay: float) -> None:
        """ema ← decay·ema + (1 − decay)·denoiser, one fused call over all tensors."""
        torch._foreach_lerp_(list(self.ema.parameters()), list(self.denoiser.parameters()), 1.0 - decay)

    # ----- the noise predictor ---------------------------------------------------------
    def predict_eps(self, net: nn.Module, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor,
                    keep: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂ = √(1 − ᾱ_t)·x_t + √ᾱ_t·net(x_t, t, c) (B, S) or (B, T, D): a noise predictor exact at ᾱ_t = 0.

        The network's error enters ε̂ scaled by √ᾱ_t, so the denoised estimate x̂0 = √ᾱ_t·x_t − √(1 − ᾱ_t)·net
        stays bounded at every step; a plain ε-network's x̂0 divides its error by √ᾱ_t (2·10⁻⁹ at t = T
        under the cosine schedule), which threw DDIM samples far off the data. The loss is still the MSE of ε̂.
        A sequence's ``mask`` (B, T) goes to the U-Net; ε̂ past each length is then √(1 − ᾱ_t)·x_t, never read.
        """
        a = self.schedule.abar[t].reshape(-1, *[1] * (x.dim() - 1))  # (B, 1) or (B, 1, 1)
        out = net(x, t, condition, keep) if mask is None else net(x, t, condition, keep, mask)
        return (1 - a).sqrt() * x + a.sqrt() * out

    # ----- sampling -----------------------------------------------------------------
    def guided_eps(self, net: nn.Module, condition: torch.Tensor, scale: float, mask: torch.Tensor | None = None):
        """ε(x_t, t) of classifier-free guidance: ε_u + scale·(ε_c − ε_u), both in one call of ``net``."""
        if scale == 1.0:
            return lambda x, t: self.predict_eps(net, x, t, condition, mask=mask)
        keep = torch.cat([torch.ones(len(condition), dtype=torch.bool), torch.zeros(len(condition), dtype=torch.bool)])
        both = lambda v: None if v is None else torch.cat([v, v])  # noqa: E731 - the rows twice, any shape

        def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            e_c, e_u = self.predict_eps(net, both(x), both(t), both(condition), keep, both(mask)).chunk(2)
            return e_u + scale * (e_c - e_u)  # (B, S) or (B, T, D)
        return eps

    @torch.no_grad()
    def sample_latents(self, condition: torch.Tensor, rng: torch.Generator | None = None,
                       sampler: str | None = None, steps: int | None = None, net: nn.Module | None = None,
                       lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised latents for full conditions (B, C'): DDIM (``steps``) or ancestral DDPM. Summaries (B, S), or
        sequences (B, max_seq_len, D) zero past ``lengths`` (B,), which a sequence model needs."""
        sampler, steps = sampler or self.cfg.sampler, steps or self.cfg.ddim_steps
        shape, clip, mask = (self.latent_dim,), self.clip, None
        if self.sequence:
            mask = length_mask(lengths, self.cfg.max_seq_len)  # (B, T)
            shape, clip = (self.cfg.max_seq_len, self.latent_dim), lambda x: self.clip(x) * mask.unsqueeze(-1)
        eps = self.guided_eps(net or self.ema, condition, self.cfg.guidance_scale, mask)
        x = torch.randn(len(condition), *shape, generator=rng, device=condition.device)
        if sampler == "ddpm":
            return self.schedule.ddpm(eps, x, rng, clip=clip)
        return self.schedule.ddim(eps, x, steps, clip=clip)

    @torch.no_grad()
    def generate(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None = None,
                 seq_len: int | None = None, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n trajectories → (x (n, max_seq_len, F) zero-padded, lengths (n,)), as the two-stage model's generate
        but with latents drawn by the diffusion model."""
        ae = self.autoencoder
        conditions = conditions.reshape(n, -1)
        if targets is not None and not self.directed:
            raise ValueError("targets need a directed autoencoder (autoencoder directed: true)")
        if self.directed:
            conditions = torch.cat([conditions, ae._directions_for(n, targets, rng)], -1)
        fixed = None if seq_len is None else torch.full((n,), int(seq_len), device=conditions.device)
        if self.sequence:  # the length first: it is the sequence's mask
            lengths = self.lengths.draw(conditions, rng) if fixed is None else fixed
            z = self.denormalize(self.sample_latents(conditions, rng, lengths=lengths))  # (n, T, D)
        else:
            z = self.denormalize(self.sample_latents(conditions, rng))  # (n, S)
            lengths = ae.sample_lengths(z, rng) if fixed is None else fixed
        return self.decode_latents(z, lengths.to(z.device), rng), lengths

    # ----- the autoencoder's latent space and copies (evaluation) -----------------------
    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.embed(x, lengths)

    @property
    def reconstruction_paths(self) -> dict[str, str]:
        return self.autoencoder.reconstruction_paths

    def reconstruct(self, x: torch.Tensor, lengths: torch.Tensor, condition: torch.Tensor | None = None,
                    path: str = "bottleneck") -> tuple[torch.Tensor, torch.Tensor]:
        return self.autoencoder.reconstruct(x, lengths, condition, path)
