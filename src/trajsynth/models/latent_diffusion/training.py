"""Phases of the latent diffusion family: ``autoencoder``, ``diffusion``, then the adversarial loop's four steps per
iteration (``adversarial.py``).

* autoencoder: the two-stage model's stage 1, run by that family's own training (through the registry); a run
  started from a finished autoencoder (``--autoencoder CKPT``) has this phase done already.
* diffusion: DDPM noise prediction on the frozen latents (cached once, normalised), condition dropped with
  probability p_uncond (classifier-free guidance), EMA weights updated after every step. The latents are the
  summaries, or (``latents: sequence``) the encoder's sequences, whose noise loss counts valid steps only.

Every draw comes from one ``torch.Generator`` saved with the optimisers, so a resumed run ends with the weights
of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ...blocks.masks import length_mask
from ...losses.reconstruction import masked_mse
from ...metrics.distribution import coverage_density, mmd_rbf
from ...optim import build_scheduler, step_scheduler
from ..base import FamilyTraining, Phase, guard_finite
from ..registry import get_family, run_config
from .adversarial import AdversarialLoop
from .config import LatentDiffusionTrain, check_run
from .model import AUTOENCODER_FAMILY, LatentDiffusion

VAL_SEED = 12345  # offset of the validation draws' seed: the same draws at every evaluation
Latents = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # raw latents, full conditions (N, C'), lengths (N,)


def noise_mse(eps: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The noise loss: MSE over all of a summary's numbers, or over a sequence's valid steps."""
    return F.mse_loss(eps, noise) if mask is None else masked_mse(eps, noise, mask)


def autoencoder_train(cfg: LatentDiffusionTrain, preset: str):
    """The latent_wgan training settings of the autoencoder phase, from this run's."""
    run = run_config(AUTOENCODER_FAMILY, preset)
    its = cfg.autoencoder_iterations
    return dataclasses.replace(run.train, stage1_iterations=max(its, 1), lr_autoencoder=cfg.lr_autoencoder,
                               stage1_min_iterations=min(run.train.stage1_min_iterations, its), seed=cfg.seed,
                               grad_clip=cfg.grad_clip, lr_schedule=cfg.lr_schedule)


class LatentDiffusionTraining(FamilyTraining):
    def __init__(self, model: LatentDiffusion, cfg: LatentDiffusionTrain, data, ctx):
        check_run(model.cfg, cfg)
        super().__init__(model, cfg, data, ctx)
        ae_fam = get_family(AUTOENCODER_FAMILY)
        self.ae = ae_fam.training_cls(model.autoencoder, autoencoder_train(cfg, model.cfg.autoencoder_preset),
                                      data, ctx)
        self.opt = torch.optim.Adam(model.denoiser.parameters(), lr=cfg.lr_diffusion)
        self.sched = build_scheduler(cfg.lr_schedule, self.opt, cfg.diffusion_iterations)
        self.rng = torch.Generator().manual_seed(cfg.seed + 1)  # every draw of the diffusion and loop phases
        self._cache: Latents | None = None
        self._val_cache: Latents | None = None
        self.loop = AdversarialLoop(self)

    # ----- state -------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"autoencoder": self.ae.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict() if self.sched is not None else {},
                "rng": self.rng.get_state(), "loop": self.loop.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.ae.load_state_dict(state["autoencoder"])
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None:
            self.sched.load_state_dict(state["scheduler"])
        self.rng.set_state(state["rng"])
        self.loop.load_state_dict(state["loop"])

    def phases(self) -> list[Phase]:
        c = self.cfg
        stage1 = self.ae.phases()[0]
        autoencoder = dataclasses.replace(stage1, name="autoencoder", total=c.autoencoder_iterations,
                                          parts=("autoencoder",), projector=False)
        diffusion = Phase("diffusion", c.diffusion_iterations, self.diffusion_step, self.evaluate_diffusion,
                          self._line, tracked="val_mmd_summary", parts=("denoiser", "ema", *self.model.fitted_parts),
                          start=self.start_diffusion,
                          on_evaluate=lambda ev: step_scheduler(self.sched, ev["val_mmd_summary"]))
        return [autoencoder, diffusion, *self.loop.phases()]

    # ----- cached frozen latents -----------------------------------------------------
    def start_diffusion(self) -> None:
        """Freeze the autoencoder; the first time, fit the latents' scale (and a sequence's length table) on the
        training latents."""
        m = self.model
        m.freeze_autoencoder()
        if bool((m.z_std == 1).all()) and bool((m.z_mean == 0).all()):
            z, c, L = self.summaries()
            m.fit_scale(z, L if m.sequence else None)
            if m.sequence:
                m.lengths.fit(c, L)

    def _encode(self, x: torch.Tensor, c: torch.Tensor, L: torch.Tensor) -> Latents:
        self.model.eval()
        return self.model.encode_latents(x, L), self.model.full_condition(c, x, L), L

    def summaries(self) -> Latents:
        """(raw latents (N, S) or (N, T, D), full conditions (N, C'), lengths (N,)) of the training set, encoded
        once (frozen encoder)."""
        if self._cache is None:
            ds = self.data.train
            self._cache = self._encode(ds.X, ds.C, ds.L)
        return self._cache

    def val_summaries(self) -> Latents:
        """The same of up to eval_samples validation movements."""
        if self._val_cache is None:
            ds = self.data.val or self.data.train
            self._val_cache = self._encode(*ds.batch(torch.arange(min(len(ds), self.cfg.eval_samples))))
        return self._val_cache

    def draw(self, fn, *shape: int, **kw) -> torch.Tensor:
        """This rank's rows of one draw of world_size × shape[0] rows from the shared generator."""
        B, world, r = shape[0], self.ctx.world_size, self.ctx.rank
        return fn(*kw.pop("args", ()), (B * world, *shape[1:]), generator=self.rng, **kw)[r * B : (r + 1) * B]

    # ----- the DDPM step ------------------------------------------------------------------
    def noise_losses(self, x0: torch.Tensor, c: torch.Tensor, mask: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(noise MSE, x̂0, t (B,)) of normalised latents x0 (B, S), or sequences x0 (B, T, D) with their mask (B, T):
        one draw of t, ε and dropped conditions."""
        m, B = self.model, len(x0)
        t = self.draw(torch.randint, B, args=(m.schedule.T,))
        noise = self.draw(torch.randn, *x0.shape)
        keep = self.draw(torch.rand, B) >= self.cfg.p_uncond
        x_t = m.schedule.q_sample(x0, t, noise)
        eps = m.predict_eps(m.denoiser, x_t, t, c, keep, mask)
        return noise_mse(eps, noise, mask), m.clip(m.schedule.predict_x0(x_t, t, eps)), t

    def apply(self, loss: torch.Tensor, opt: torch.optim.Optimizer, sched=None) -> None:
        """One update of the denoiser on ``loss``, then its EMA."""
        params = list(self.model.denoiser.parameters())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        self.ctx.sync_grads(params)
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        opt.step()
        step_scheduler(sched)
        self.model.ema_update(self.cfg.ema_decay)

    def diffusion_step(self) -> dict[str, float]:
        z, c, L = self.summaries()
        idx = self.draw(torch.randint, self.cfg.batch_size, args=(len(z),))
        self.model.denoiser.train()
        loss, _, _ = self.noise_losses(self.model.normalize(z[idx]), c[idx], self.mask(L[idx], z))
        guard_finite({"noise": loss})
        self.apply(loss, self.opt, self.sched)
        return {"noise": float(loss.detach())}

    # ----- validation ---------------------------------------------------------------------
    @torch.no_grad()
    def val_noise_loss(self) -> float:
        """The EMA denoiser's noise MSE on validation latents, the same draws at every evaluation."""
        m = self.model
        z, c, L = self.val_summaries()
        mask = self.mask(L, z)
        gen = torch.Generator().manual_seed(self.cfg.seed + VAL_SEED)
        t = torch.randint(m.schedule.T, (len(z),), generator=gen)
        noise = torch.randn(z.shape, generator=gen)
        x_t = m.schedule.q_sample(m.normalize(z), t, noise)
        return float(noise_mse(m.predict_eps(m.ema, x_t, t, c, mask=mask), noise, mask))

    @torch.no_grad()
    def generated_scores(self) -> dict[str, float]:
        """MMD, coverage and density of DDIM summaries for the validation conditions vs the validation summaries.

        Sequences are drawn at the validation movements' lengths and compared as summaries (the frozen pooler's)."""
        m = self.model
        z, c, L = self.val_summaries()
        gen = torch.Generator().manual_seed(self.cfg.seed + VAL_SEED)
        fake = m.summarize(m.denormalize(m.sample_latents(c, gen, lengths=L)), L)
        z = m.summarize(z, L)
        cd = coverage_density(z.numpy(), fake.numpy())
        return {"val_mmd_summary": mmd_rbf(z.numpy(), fake.numpy(), seed=self.cfg.seed),
                "val_coverage": cd["coverage"], "val_density": cd["density"]}

    def mask(self, lengths: torch.Tensor, z: torch.Tensor) -> torch.Tensor | None:
        """The valid steps (B, T) of sequence latents z (B, T, D); None for summaries."""
        return length_mask(lengths, z.size(1)) if self.model.sequence else None

    def evaluate_diffusion(self) -> dict[str, float]:
        self.model.eval()
        return {"val_noise": self.val_noise_loss(), **self.generated_scores()}

    def _line(self, it: int, mean: dict[str, float], its: float) -> str:
        return f"[diffusion] Iter {it:6d}/{self.cfg.diffusion_iterations} | Noise {mean['noise']:.4f} | {its:.1f} it/s"
