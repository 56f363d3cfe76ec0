"""Phases of the latent diffusion family: ``autoencoder``, ``diffusion``, then the adversarial loop's four steps per
iteration (``adversarial.py``).

* autoencoder: the two-stage model's stage 1, run by that family's own training (through the registry); a run
  started from a finished autoencoder (``--autoencoder CKPT``) has this phase done already.
* diffusion: DDPM noise prediction on the frozen summaries (cached once, normalised), condition dropped with
  probability p_uncond (classifier-free guidance), EMA weights updated after every step.

Every draw comes from one ``torch.Generator`` saved with the optimisers, so a resumed run ends with the weights
of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ...metrics.distribution import coverage_density, mmd_rbf
from ...optim import build_scheduler, step_scheduler
from ..base import FamilyTraining, Phase, guard_finite
from ..registry import get_family, run_config
from .adversarial import AdversarialLoop
from .config import LatentDiffusionTrain
from .model import AUTOENCODER_FAMILY, LatentDiffusion

VAL_SEED = 12345  # offset of the validation draws' seed: the same draws at every evaluation


def autoencoder_train(cfg: LatentDiffusionTrain, preset: str):
    """The latent_wgan training settings of the autoencoder phase, from this run's."""
    run = run_config(AUTOENCODER_FAMILY, preset)
    its = cfg.autoencoder_iterations
    return dataclasses.replace(run.train, stage1_iterations=max(its, 1), lr_autoencoder=cfg.lr_autoencoder,
                               stage1_min_iterations=min(run.train.stage1_min_iterations, its), seed=cfg.seed,
                               grad_clip=cfg.grad_clip, lr_schedule=cfg.lr_schedule)


class LatentDiffusionTraining(FamilyTraining):
    def __init__(self, model: LatentDiffusion, cfg: LatentDiffusionTrain, data, ctx):
        super().__init__(model, cfg, data, ctx)
        ae_fam = get_family(AUTOENCODER_FAMILY)
        self.ae = ae_fam.training_cls(model.autoencoder, autoencoder_train(cfg, model.cfg.autoencoder_preset),
                                      data, ctx)
        self.opt = torch.optim.Adam(model.denoiser.parameters(), lr=cfg.lr_diffusion)
        self.sched = build_scheduler(cfg.lr_schedule, self.opt, cfg.diffusion_iterations)
        self.rng = torch.Generator().manual_seed(cfg.seed + 1)  # every draw of the diffusion and loop phases
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self._val_cache: tuple[torch.Tensor, torch.Tensor] | None = None
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
                          self._line, tracked="val_mmd_summary", parts=("denoiser", "ema", "z_mean", "z_std"),
                          start=self.start_diffusion,
                          on_evaluate=lambda ev: step_scheduler(self.sched, ev["val_mmd_summary"]))
        return [autoencoder, diffusion, *self.loop.phases()]

    # ----- cached frozen summaries -----------------------------------------------------
    def start_diffusion(self) -> None:
        """Freeze the autoencoder; the first time, fit the latents' scale on the training summaries."""
        self.model.freeze_autoencoder()
        if bool((self.model.z_std == 1).all()) and bool((self.model.z_mean == 0).all()):
            self.model.fit_scale(self.summaries()[0])

    def _encode(self, ds) -> tuple[torch.Tensor, torch.Tensor]:
        self.model.eval()
        return self.model.autoencoder.encode_all(ds.X, ds.L), self.model.full_condition(ds.C, ds.X, ds.L)

    def summaries(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw summaries (N, S), full conditions (N, C')) of the training set, encoded once (frozen encoder)."""
        if self._cache is None:
            self._cache = self._encode(self.data.train)
        return self._cache

    def val_summaries(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The same of up to eval_samples validation movements."""
        if self._val_cache is None:
            ds = self.data.val or self.data.train
            n = min(len(ds), self.cfg.eval_samples)
            x, c, L = ds.batch(torch.arange(n))
            self.model.eval()
            self._val_cache = self.model.autoencoder.encode_all(x, L), self.model.full_condition(c, x, L)
        return self._val_cache

    def draw(self, fn, *shape: int, **kw) -> torch.Tensor:
        """This rank's rows of one draw of world_size × shape[0] rows from the shared generator."""
        B, world, r = shape[0], self.ctx.world_size, self.ctx.rank
        return fn(*kw.pop("args", ()), (B * world, *shape[1:]), generator=self.rng, **kw)[r * B : (r + 1) * B]

    # ----- the DDPM step ------------------------------------------------------------------
    def noise_losses(self, x0: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(noise MSE, x̂0 (B, S), t (B,)) of normalised latents x0 (B, S): one draw of t, ε and dropped conditions."""
        m, B = self.model, len(x0)
        t = self.draw(torch.randint, B, args=(m.schedule.T,))
        noise = self.draw(torch.randn, B, m.latent_dim)
        keep = self.draw(torch.rand, B) >= self.cfg.p_uncond
        x_t = m.schedule.q_sample(x0, t, noise)
        eps = m.predict_eps(m.denoiser, x_t, t, c, keep)
        return F.mse_loss(eps, noise), m.clip(m.schedule.predict_x0(x_t, t, eps)), t

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
        z, c = self.summaries()
        idx = self.draw(torch.randint, self.cfg.batch_size, args=(len(z),))
        self.model.denoiser.train()
        loss, _, _ = self.noise_losses(self.model.normalize(z[idx]), c[idx])
        guard_finite({"noise": loss})
        self.apply(loss, self.opt, self.sched)
        return {"noise": float(loss.detach())}

    # ----- validation ---------------------------------------------------------------------
    @torch.no_grad()
    def val_noise_loss(self) -> float:
        """The EMA denoiser's noise MSE on validation summaries, the same draws at every evaluation."""
        m = self.model
        z, c = self.val_summaries()
        gen = torch.Generator().manual_seed(self.cfg.seed + VAL_SEED)
        t = torch.randint(m.schedule.T, (len(z),), generator=gen)
        noise = torch.randn(z.shape, generator=gen)
        x_t = m.schedule.q_sample(m.normalize(z), t, noise)
        return float(F.mse_loss(m.predict_eps(m.ema, x_t, t, c), noise))

    @torch.no_grad()
    def generated_scores(self) -> dict[str, float]:
        """MMD, coverage and density of DDIM summaries for the validation conditions vs the validation summaries."""
        z, c = self.val_summaries()
        gen = torch.Generator().manual_seed(self.cfg.seed + VAL_SEED)
        fake = self.model.denormalize(self.model.sample_latents(c, gen))
        cd = coverage_density(z.numpy(), fake.numpy())
        return {"val_mmd_summary": mmd_rbf(z.numpy(), fake.numpy(), seed=self.cfg.seed),
                "val_coverage": cd["coverage"], "val_density": cd["density"]}

    def evaluate_diffusion(self) -> dict[str, float]:
        self.model.eval()
        return {"val_noise": self.val_noise_loss(), **self.generated_scores()}

    def _line(self, it: int, mean: dict[str, float], its: float) -> str:
        return f"[diffusion] Iter {it:6d}/{self.cfg.diffusion_iterations} | Noise {mean['noise']:.4f} | {its:.1f} it/s"
