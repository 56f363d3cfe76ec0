"""The two-stage latent WGAN-GP (RTSGAN-style; "TimeGAN V6").

Stage 1 trains encoder → pooler → expander → decoder as an autoencoder, with a
direct path (encoder → decoder) that gives the encoder strong gradients, plus
two read-outs from the summary: sequence length and condition. Stage 2 freezes
all of that and trains a conditional WGAN-GP on summary vectors only.
Generation: noise + condition → generator → z → length head → expander → decoder.
``reconstruct`` runs real movements through either path, for the evaluation's ceiling probe.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...blocks.expanders import build_expander
from ...blocks.masks import length_mask, masked_step_mean
from ...blocks.mixture_decoder import AutoregressiveMixture
from ...blocks.mlp import SummaryHead, build_critic, build_generator
from ...blocks.pooling import LatentPooler
from ...blocks.rnn import RecurrentProjection
from ...blocks.step_noise import StepNoise
from ...data.features import FEATURE_NAMES
from ...losses.reconstruction import masked_mse, moment_matching
from ...losses.wgan import critic_loss, generator_loss, gradient_penalty
from ..angles import draw_angles
from .config import LatentWGANArch, LatentWGANTrain

ANGLE_BINS = 72  # the training directions' histogram of a directed model (5° bins)
# a movement's features kept at the decoder's mean by a mixture decoder (see _decoded)
MEAN_FEATURES = [FEATURE_NAMES.index(name) for name in ("dx", "dy", "dt")]
AUTOENCODER_PARTS = ("encoder", "pooler", "expander", "decoder", "length_head", "condition_head", "step_noise",
                     "residual")


def end_directions(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """cos, sin (B, 2) of the direction from each movement's start to its end, read off its features x (B, T, F).

    dx, dy are (2/π)·atan(v / D) of the displacement v with one positive D per movement (data/features.py), so
    tan(π/2 · feature) is v / D and keeps its direction.
    """
    end = x[torch.arange(len(x)), (lengths - 1).clamp_min(0), :2].double()  # (B, 2) scaled end point
    v = torch.tan(end.clamp(-1 + 1e-6, 1 - 1e-6) * (math.pi / 2))
    norm = v.norm(dim=-1, keepdim=True)
    along_x = torch.tensor([1.0, 0.0], dtype=v.dtype)  # a movement that ends at its start: any direction
    return torch.where(norm > 0, v / norm.clamp_min(1e-12), along_x).to(x.dtype)


class LatentWGAN(nn.Module):
    def __init__(self, cfg: LatentWGANArch):
        super().__init__()
        self.cfg = cfg
        self.directed = cfg.directed  # read by the sampler: generate(..., targets=) and path() for an end point
        self.path_from = cfg.path_from  # read by the sampler: how features become a pixel path
        n_cond = cfg.condition_dim + (2 if cfg.directed else 0)  # what the heads and the GAN see
        self.encoder = RecurrentProjection(cfg.feature_dim, cfg.encoder_hidden_dim, cfg.encoder_num_layers,
                                           cfg.latent_dim)
        self.pooler = LatentPooler(cfg.latent_dim, cfg.summary_dim, cfg.pool_type)
        self.expander = build_expander(
            cfg.expand_type, summary_dim=cfg.summary_dim, latent_dim=cfg.latent_dim,
            hidden_dim=cfg.expander_hidden_dim, num_layers=cfg.expander_num_layers, max_len=cfg.max_seq_len)
        self.decoder = RecurrentProjection(cfg.latent_dim, cfg.decoder_hidden_dim, cfg.decoder_num_layers,
                                           cfg.feature_dim)
        # decoder_type "mixture": each step's residual from the decoded mean is drawn given the step before
        # (blocks/mixture_decoder.py), from the latent and the mean of that step
        self.residual = (AutoregressiveMixture(cfg.latent_dim + cfg.feature_dim, cfg.feature_dim,
                                               cfg.decoder_hidden_dim, cfg.decoder_num_layers, cfg.decoder_components)
                         if cfg.decoder_type == "mixture" else nn.Identity())
        self.length_head = SummaryHead(cfg.summary_dim, cfg.max_seq_len)  # logits of length 1..T
        self.condition_head = SummaryHead(cfg.summary_dim, n_cond)
        # the stochastic decoder (decoder_noise_dim > 0): per-step noise on the expanded latents, see blocks/step_noise
        self.step_noise = (StepNoise(cfg.feature_dim, cfg.latent_dim, cfg.decoder_noise_dim)
                           if cfg.decoder_noise_dim > 0 else nn.Identity())
        gan_kw = dict(condition_dim=n_cond, embed_dim=cfg.condition_embed_dim)
        if cfg.directed:  # counts over [-π, π): directions drawn for movements generated without an end point
            self.register_buffer("angle_hist", torch.zeros(ANGLE_BINS, dtype=torch.float64))
        self.generator = build_generator(cfg.generator_type, noise_dim=cfg.noise_dim, summary_dim=cfg.summary_dim,
                                         hidden_dims=cfg.generator_hidden_dims, **gan_kw)
        self.critic = build_critic(cfg.critic_type, summary_dim=cfg.summary_dim,
                                   hidden_dims=cfg.critic_hidden_dims, **gan_kw)

    # ----- conditions -------------------------------------------------------
    def full_condition(self, condition: torch.Tensor, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The data's condition (B, condition_dim) with, for a directed model, each movement's direction (B, 2)."""
        if not self.directed:
            return condition
        return torch.cat([condition, end_directions(x, lengths)], -1)

    def set_directions(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        """Fill the direction histogram from the training movements (a directed model only)."""
        d = end_directions(x, lengths).double()
        angle = torch.atan2(d[:, 1], d[:, 0])  # (N,) in [-π, π]
        b = ((angle + math.pi) / (2 * math.pi) * ANGLE_BINS).long().clamp(0, ANGLE_BINS - 1)
        self.angle_hist.copy_(torch.bincount(b, minlength=ANGLE_BINS).double())

    def _directions_for(self, n: int, targets: torch.Tensor | None, rng: torch.Generator | None) -> torch.Tensor:
        """cos, sin (n, 2): of the end points ``targets`` (n, 2) px, else drawn from the training histogram."""
        if targets is not None:
            t = torch.as_tensor(targets, dtype=torch.float64).reshape(n, 2)
            return (t / t.norm(dim=-1, keepdim=True).clamp_min(1e-12)).float()
        if self.angle_hist.sum() <= 0:
            raise RuntimeError("this directed model's direction histogram is empty: it was never trained")
        angle = draw_angles(self.angle_hist, n, rng)  # (n,) rad
        return torch.stack([angle.cos(), angle.sin()], -1).float()

    # ----- parameter groups -------------------------------------------------
    def autoencoder_parameters(self):
        return [p for name in AUTOENCODER_PARTS for p in getattr(self, name).parameters()]

    def freeze_autoencoder(self) -> None:
        """Stage 2 setup: no gradients into the autoencoder; eval mode for its parts."""
        for name in AUTOENCODER_PARTS:
            part = getattr(self, name)
            part.requires_grad_(False)
            part.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and not next(self.encoder.parameters()).requires_grad:  # frozen parts stay in eval
            for name in AUTOENCODER_PARTS:
                getattr(self, name).eval()
        return self

    # ----- stage 1 ----------------------------------------------------------
    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, F) → summary z (B, S)."""
        return self.pooler(self.encoder(x), lengths)

    @torch.no_grad()
    def encode_all(self, x: torch.Tensor, lengths: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """Summaries of many sequences x (N, T, F) → (N, S), in length-sorted chunks.

        Each chunk is cut at its longest member, so little time is spent on padding.
        """
        order = torch.argsort(lengths, stable=True)
        z = x.new_empty(len(x), self.cfg.summary_dim)
        for s in range(0, len(x), chunk):
            idx = order[s : s + chunk]
            L = lengths[idx]
            z[idx] = self.encode(x[idx, : int(L.max())], L)  # (b, S)
        return z

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The family interface's latent vector: the frozen encoder's summary, x (N, T, F) → (N, S)."""
        return self.encode_all(x, lengths)

    def forward_autoencoder(self, x: torch.Tensor, lengths: torch.Tensor, condition: torch.Tensor | None = None,
                            w: LatentWGANTrain | None = None):
        """Returns (x_recon (B, T, F), losses dict with 'total' weighted by ``w``'s lambdas)."""
        cfg, T, w = self.cfg, x.size(1), w or LatentWGANTrain()
        if condition is not None:
            condition = self.full_condition(condition, x, lengths)
        mask = length_mask(lengths, T)  # (B, T)
        h = self.encoder(x)  # (B, T, latent)
        z = self.pooler(h, lengths)  # (B, S)
        h_recon = self.expander(z, T, lengths)  # (B, T, latent)
        losses = {}
        h_in = h_recon
        if self.stochastic:  # the decoder reads the expanded latents plus each real step's residual draw
            h_in, losses["kl"] = self.step_noise.posterior(x, h_recon, mask.float())
        x_direct, x_recon = self.decoder(torch.cat([h, h_in])).chunk(2)  # one decoder call for both paths
        losses.update({
            "direct": masked_mse(x_direct, x, mask),
            "recon": masked_mse(x_recon, x, mask),
            "latent": masked_mse(h_recon, h, mask),
            "length": F.cross_entropy(self.length_head(z), (lengths - 1).clamp(0, cfg.max_seq_len - 1)),
        })
        if self.mixture:  # the residuals of the generation path, given its latents and means (no gradient into them)
            context = torch.cat([h_in, x_recon], -1).detach()  # (B, T, latent + F)
            losses["residual_nll"] = masked_step_mean(self.residual.nll(context, x - x_recon.detach()), mask)
        total = losses["direct"] + w.lambda_recon * losses["recon"] + w.lambda_latent * losses["latent"]
        total = total + w.lambda_length * losses["length"]
        if self.stochastic:
            total = total + w.lambda_kl * losses["kl"]
        if self.mixture:  # its own parameters only: a weight would only scale their gradients
            total = total + losses["residual_nll"]
        if condition is not None:
            losses["condition"] = F.mse_loss(self.condition_head(z), condition)
            total = total + w.lambda_condition * losses["condition"]
        losses["total"] = total
        return x_recon * mask.unsqueeze(-1), losses

    # ----- stage 2 ----------------------------------------------------------
    def forward_discriminator(self, z_real: torch.Tensor, condition: torch.Tensor,
                              lengths: torch.Tensor | None = None, rng: torch.Generator | None = None,
                              w: LatentWGANTrain | None = None, noise: torch.Tensor | None = None,
                              alpha: torch.Tensor | None = None) -> dict:
        """Critic losses. ``z_real`` is a summary (B, S), or a sequence (B, T, F) when lengths are given.

        ``noise`` (B, noise_dim) and the penalty's ``alpha`` (B, 1) may be drawn by the caller
        (in this order, as drawn here otherwise); what is not given comes from ``rng``.
        """
        w = w or LatentWGANTrain()
        if lengths is not None:
            with torch.no_grad():
                z_real = self.encode(z_real, lengths)
        if noise is None:
            noise = torch.randn(z_real.size(0), self.cfg.noise_dim, device=z_real.device, generator=rng)
        with torch.no_grad():
            z_fake = self.generator(noise, condition)
        scores = self.critic(torch.cat([z_real, z_fake]), condition.repeat(2, 1))  # real and fake in one pass
        d_real, d_fake = scores.chunk(2)
        # The penalty gets its own pass: double backward through a merged batch costs more than it saves.
        gp = gradient_penalty(self.critic, z_real, z_fake, condition, rng, alpha)
        loss_w = critic_loss(d_real, d_fake)
        return {"total": loss_w + w.lambda_gp * gp, "wasserstein": -loss_w.detach(), "gp": gp.detach()}

    def forward_generator(self, condition: torch.Tensor, z_real: torch.Tensor | None = None,
                          rng: torch.Generator | None = None, w: LatentWGANTrain | None = None,
                          noise: torch.Tensor | None = None) -> dict:
        """Generator losses: adversarial, feature matching on ``z_real``, condition guard.

        ``noise`` (B, noise_dim) may be drawn by the caller, else it comes from ``rng``.
        """
        cfg, w = self.cfg, w or LatentWGANTrain()
        if noise is None:
            noise = torch.randn(condition.size(0), cfg.noise_dim, device=condition.device, generator=rng)
        z_fake = self.generator(noise, condition)
        losses = {"adv": generator_loss(self.critic(z_fake, condition))}
        total = losses["adv"]
        if w.use_feature_matching and z_real is not None:
            losses["fm"] = moment_matching(z_fake, z_real)
            total = total + w.lambda_fm * losses["fm"]
        if w.lambda_cond_guard > 0:
            # The frozen condition head reads the distance off a summary; a generator
            # that ignores its condition pays for it here.
            losses["cond_guard"] = F.mse_loss(self.condition_head(z_fake), condition)
            total = total + w.lambda_cond_guard * losses["cond_guard"]
        losses["total"] = total
        return losses

    # ----- generation -------------------------------------------------------
    def sample_lengths(self, z: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
        probs = torch.softmax(self.length_head(z), dim=-1)  # (B, T)
        return torch.multinomial(probs, 1, generator=rng).squeeze(1) + 1  # (B,)

    @property
    def stochastic(self) -> bool:
        """Whether the decoder draws per-step noise (arch ``decoder_noise_dim`` > 0)."""
        return isinstance(self.step_noise, StepNoise)

    @property
    def mixture(self) -> bool:
        """Whether each step's residual from the decoded mean is drawn (arch ``decoder_type`` "mixture")."""
        return isinstance(self.residual, AutoregressiveMixture)

    def _decoded(self, h: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
        """Latent sequences h (B, T, latent) → features (B, T, F): the decoder's mean, plus with a mixture
        decoder a residual drawn step by step, clipped to the features' range.

        For movements built from increments (``path_from``), the drawn residual goes onto the motion
        features only (speed, acceleration, heading, turning rate); the start-relative position and the
        interval keep the decoder's mean. Such a path ends on the last step's position, and a drawn offset
        there moved the end off the target (median end error 42 % against 13 % with the mean, on a `fast`
        model); a drawn interval, noise on a log scale, lengthened the movements (median duration 1,410 ms
        against 830 ms with the mean and 808 ms for people), and rendering puts the intervals onto the
        logger's clock anyway.
        """
        x = self.decoder(h)
        if self.mixture:
            r = self.residual.sample(torch.cat([h, x], -1), rng, self.cfg.decoder_temperature)  # (B, T, F)
            if self.path_from == "increments":
                r[..., MEAN_FEATURES] = 0.0
            x = (x + r).clamp(-1.0, 1.0)
        return x

    def decode(self, z: torch.Tensor, seq_len: int | torch.Tensor, rng: torch.Generator | None = None
               ) -> torch.Tensor:
        """Summary z (B, S) → features (B, T, F), zero past each length (a stochastic decoder draws from ``rng``)."""
        lengths = seq_len if torch.is_tensor(seq_len) else torch.full((z.size(0),), int(seq_len), device=z.device)
        T = int(lengths.max())
        h = self.expander(z, T, lengths)  # (B, T, latent)
        if self.stochastic:
            h = self.step_noise.prior(h, rng)
        x = self._decoded(h, rng)  # (B, T, F)
        return x * length_mask(lengths, T).unsqueeze(-1)

    @torch.no_grad()
    def generate(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None = None,
                 seq_len: int | None = None, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n trajectories → (x (n, max_seq_len, F) zero-padded, lengths (n,)).

        Lengths come from the length head unless ``seq_len`` fixes them. A directed model goes toward
        ``targets`` (n, 2) px when given, else in directions drawn like the training ones; targets for a
        distance-only model are a ValueError."""
        conditions = conditions.reshape(n, -1)
        if targets is not None and not self.directed:
            raise ValueError("targets need a directed model (arch directed: true)")
        if self.directed:
            conditions = torch.cat([conditions, self._directions_for(n, targets, rng)], -1)
        noise = torch.randn(n, self.cfg.noise_dim, device=conditions.device, generator=rng)
        z = self.generator(noise, conditions)  # (n, S)
        lengths = self.sample_lengths(z, rng) if seq_len is None else torch.full((n,), int(seq_len))
        return self.decode_bucketed(z, lengths.to(z.device), rng=rng), lengths

    def decode_bucketed(self, z: torch.Tensor, lengths: torch.Tensor, chunk: int = 256,
                        rng: torch.Generator | None = None) -> torch.Tensor:
        """Decode in chunks of similar length, each only as long as its longest member.

        Recurrent decoding costs time per step, so a batch padded to its single
        longest sequence wastes most of its work; sorting first removes that.
        Returns (n, max_seq_len, F), zero past each length.
        """
        out = z.new_zeros(len(z), self.cfg.max_seq_len, self.cfg.feature_dim)
        order = torch.argsort(lengths)
        for s in range(0, len(z), chunk):
            idx = order[s : s + chunk]
            x = self.decode(z[idx], lengths[idx], rng)  # (b, T_chunk, F)
            out[idx, : x.size(1)] = x
        return out

    # ----- reconstruction (the evaluation's ceiling probe) -------------------
    reconstruction_paths = {
        "bottleneck": "encoder → summary → expander → decoder: the path every generated movement takes",
        "direct": "encoder → decoder, without the summary: what the decoder can do with every step's latent",
    }

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, lengths: torch.Tensor, condition: torch.Tensor | None = None,
                    path: str = "bottleneck", chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
        """The autoencoder's copy of real sequences x (N, T, F) → (x_hat (N, T, F) zero-padded, lengths (N,)).

        Lengths are the real ones (the length head is not asked), so each copy pairs step for step
        with its original. ``condition`` is accepted for the family interface and unused: the
        encoder reads the distance off the movement itself. Chunks are length-sorted and cut at
        their longest member, as in training, so little time goes to padding.
        """
        if path not in self.reconstruction_paths:
            raise ValueError(f"unknown reconstruction path {path!r}; choose one of "
                             f"{', '.join(self.reconstruction_paths)}")
        was_training = self.training
        self.eval()  # dropout-free today, but a copy must never depend on the mode it was called in
        rng = torch.Generator().manual_seed(0)  # a stochastic decoder's draws: the same copies every call
        try:
            out = torch.zeros_like(x)  # (N, T, F)
            order = torch.argsort(lengths, stable=True)
            for s in range(0, len(x), chunk):
                idx = order[s : s + chunk]
                L = lengths[idx]
                out[idx, : int(L.max())] = self._reconstruct_chunk(x[idx, : int(L.max())], L, path, rng)
        finally:
            self.train(was_training)
        return out, lengths

    def _reconstruct_chunk(self, x: torch.Tensor, lengths: torch.Tensor, path: str,
                           rng: torch.Generator) -> torch.Tensor:
        """x (b, T', F) → its copy (b, T', F), zero past each length (the bottleneck draws noise as generation does)."""
        h = self.encoder(x)  # (b, T', latent)
        if path == "bottleneck":
            return self.decode(self.pooler(h, lengths), lengths, rng)
        return self._decoded(h, rng) * length_mask(lengths, x.size(1)).unsqueeze(-1)

    @torch.no_grad()
    def interpolate(self, z1: torch.Tensor, z2: torch.Tensor, n_steps: int = 10,
                    seq_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode n_steps summaries on the line from z1 (S,) to z2 (S,)."""
        w = torch.linspace(0, 1, n_steps, device=z1.device)[:, None]  # (n, 1)
        z = (1 - w) * z1[None] + w * z2[None]  # (n, S)
        lengths = self.length_head(z).argmax(-1) + 1 if seq_len is None else torch.full((n_steps,), seq_len)
        return self.decode(z, lengths), lengths
