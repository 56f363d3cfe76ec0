"""The adversarial loop (the design's structure): per iteration k = 1..num_loops, four phases.

1. ``loop<k>_generate``: num_samples fake latents with DDIM (EMA weights), for the conditions of num_samples
   training movements drawn at random.
2. ``loop<k>_encode``: those movements encoded by the frozen autoencoder (the real latents); the 80/20 split
   of reals and fakes is drawn and a fresh discriminator is initialised.
3. ``loop<k>_discriminator``: discriminator_epochs epochs of BCE (real 1, fake 0), validation each epoch, a
   plateau scheduler on the validation loss; its best weights (by validation loss) go on to step 4.
4. ``loop<k>_diffusion``: diffusion_epochs epochs of the noise loss plus discriminator_weight × the frozen
   discriminator's BCE on the denoised estimate x̂0 (labelled real); validation every loop_eval_every
   epochs, DDPM samples scored every loop_sample_every; best and latest checkpoints.

Steps 1 and 2 are one iteration each; 3 and 4 are stepped by epochs. Each is a phase of the common loop, so
a run resumes at any iteration and step; the latents, the split, the best discriminator and the epoch
counters are part of the saved state.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ...optim import build_scheduler, step_scheduler
from ..base import Phase, guard_finite

if TYPE_CHECKING:
    from .training import LatentDiffusionTraining

PREVIEW_SAMPLES = 64  # DDPM samples scored at each sample epoch (the design's 64)
TENSORS = ("idx", "fake", "real", "split", "best")


class AdversarialLoop:
    def __init__(self, owner: LatentDiffusionTraining):
        self.o, self.model, self.cfg = owner, owner.model, owner.cfg
        self.opt_d = torch.optim.Adam(self.model.discriminator.parameters(), lr=self.cfg.lr_discriminator)
        self.sched_d = build_scheduler("plateau", self.opt_d, self.cfg.discriminator_epochs)
        self.opt = torch.optim.Adam(self.model.denoiser.parameters(), lr=self.cfg.lr_loop)
        self.state: dict = {"disc_epoch": 0, "diff_epoch": 0, "best_loss": float("inf"), "best_acc": 0.0}

    def state_dict(self) -> dict:
        return {"optimizer_d": self.opt_d.state_dict(), "scheduler_d": self.sched_d.state_dict(),
                "optimizer": self.opt.state_dict(), **self.state}

    def load_state_dict(self, state: dict) -> None:
        self.opt_d.load_state_dict(state["optimizer_d"])
        self.sched_d.load_state_dict(state["scheduler_d"])
        self.opt.load_state_dict(state["optimizer"])
        self.state = {k: v for k, v in state.items() if k not in ("optimizer_d", "scheduler_d", "optimizer")}

    def phases(self) -> list[Phase]:
        c, out = self.cfg, []
        for k in range(1, c.num_loops + 1):
            tag = f"[loop {k}/{c.num_loops}]"
            out += [
                Phase(f"loop{k}_generate", 1, self.generate_step, dict, lambda it, m, s, t=tag: (
                    f"{t} Step 1: generated {int(m['n'])} fake latents with DDIM ({self.model.cfg.ddim_steps} "
                    f"steps) in {m['seconds']:.1f} s"), tracked="", log_every=1),
                Phase(f"loop{k}_encode", 1, self.encode_step, dict, lambda it, m, s, t=tag: (
                    f"{t} Step 2: encoded {int(m['n'])} real latents"), tracked="", log_every=1),
                Phase(f"loop{k}_discriminator", c.discriminator_epochs, self.discriminator_epoch,
                      self.evaluate_discriminator, self._disc_line(tag), tracked="val_disc_loss",
                      parts=("discriminator",), start=self._unfreeze_discriminator, finish=self._load_best,
                      log_every=1, eval_every=1, save_every=1, save_latest=True, keep_best=True),
                Phase(f"loop{k}_diffusion", c.diffusion_epochs, self.diffusion_epoch, self.validate,
                      self._diff_line(tag), tracked="val_loss", parts=("denoiser", "ema"),
                      start=self._freeze_discriminator, log_every=1, eval_every=c.loop_eval_every, save_every=1,
                      save_latest=True, keep_best=True),
            ]
        return out

    # ----- steps 1 and 2 -------------------------------------------------------------------
    def generate_step(self) -> dict[str, float]:
        """Fakes (num_samples, S), normalised, for the conditions of num_samples random training movements."""
        z, c, _ = self.o.summaries()
        n = min(self.cfg.num_samples, len(z))
        idx = torch.randperm(len(z), generator=self.o.rng)[:n]
        t0 = time.perf_counter()
        self.model.eval()
        fake = self.model.sample_latents(c[idx], self.o.rng, sampler="ddim")
        self.state.update(idx=idx, fake=fake)
        return {"n": float(n), "seconds": time.perf_counter() - t0}

    def encode_step(self) -> dict[str, float]:
        """The reals, encoded; the 80/20 split of reals and fakes; a fresh discriminator and its optimiser."""
        ds, idx = self.o.data.train, self.state["idx"]
        x, _, L = ds.batch(idx)
        self.model.eval()
        real = self.model.normalize(self.model.autoencoder.encode_all(x, L))  # (n, S)
        split = torch.randperm(2 * len(idx), generator=self.o.rng)  # over cat([real, fake])
        self._reset_discriminator()
        self.state.update(real=real, split=split, best=None, best_loss=float("inf"), best_acc=0.0,
                          disc_epoch=0, diff_epoch=0)
        return {"n": float(len(idx))}

    def _reset_discriminator(self) -> None:
        seed = int(torch.randint(2**31, (1,), generator=self.o.rng))
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            for m in self.model.discriminator.modules():
                if isinstance(m, torch.nn.Linear):
                    m.reset_parameters()
        self.opt_d = torch.optim.Adam(self.model.discriminator.parameters(), lr=self.cfg.lr_discriminator)
        self.sched_d = build_scheduler("plateau", self.opt_d, self.cfg.discriminator_epochs)

    # ----- step 3: the discriminator ---------------------------------------------------------
    def _examples(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """(latents (2n, S), conditions (2n, C'), labels (2n,), n_train) in the split's order."""
        st, c_all = self.state, self.o.summaries()[1]
        c = c_all[st["idx"]]
        z = torch.cat([st["real"], st["fake"]])[st["split"]]
        cond = torch.cat([c, c])[st["split"]]
        y = torch.cat([torch.ones(len(c)), torch.zeros(len(c))])[st["split"]]
        return z, cond, y, int(0.8 * len(z))

    def _unfreeze_discriminator(self) -> None:
        self.model.discriminator.requires_grad_(True)

    def discriminator_epoch(self) -> dict[str, float]:
        z, c, y, n_train = self._examples()
        order = torch.randperm(n_train, generator=self.o.rng)
        B, sums = self.cfg.batch_size, {"loss": 0.0, "acc": 0.0}
        for s in range(0, n_train, B):
            i = order[s : s + B]
            logits = self.model.discriminator(z[i], c[i])
            loss = F.binary_cross_entropy_with_logits(logits, y[i])
            guard_finite({"discriminator": loss})
            self.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            self.o.ctx.sync_grads(list(self.model.discriminator.parameters()))
            self.opt_d.step()
            sums["loss"] += float(loss.detach()) * len(i)
            sums["acc"] += float(((logits > 0).float() == y[i]).float().sum())
        val_loss, val_acc = self._disc_scores(z[n_train:], c[n_train:], y[n_train:])
        step_scheduler(self.sched_d, val_loss)
        self._track_best(val_loss, val_acc)
        return {"train_loss": sums["loss"] / n_train, "train_acc": sums["acc"] / n_train, "val_loss": val_loss,
                "val_acc": val_acc}

    @torch.no_grad()
    def _disc_scores(self, z: torch.Tensor, c: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        logits = self.model.discriminator(z, c)
        return float(F.binary_cross_entropy_with_logits(logits, y)), float(((logits > 0).float() == y).float().mean())

    def _track_best(self, val_loss: float, val_acc: float) -> None:
        st = self.state
        st["disc_epoch"] += 1
        st.update(last_loss=val_loss, last_acc=val_acc)
        if val_loss < st["best_loss"]:
            st.update(best_loss=val_loss, best_acc=val_acc,
                      best={k: v.clone() for k, v in self.model.discriminator.state_dict().items()})

    def evaluate_discriminator(self) -> dict[str, float]:
        st = self.state
        return {"val_disc_loss": st["last_loss"], "val_disc_acc": st["last_acc"], "best_disc_loss": st["best_loss"],
                "best_disc_acc": st["best_acc"]}

    def _load_best(self) -> None:
        self.model.discriminator.load_state_dict(self.state["best"])

    def _disc_line(self, tag: str):
        def line(it: int, m: dict[str, float], its: float) -> str:
            return (f"{tag} Discriminator Epoch {it}/{self.cfg.discriminator_epochs}: "
                    f"Train Loss={m['train_loss']:.4f}, Train Acc={m['train_acc']:.4f}, "
                    f"Val Loss={m['val_loss']:.4f}, Val Acc={m['val_acc']:.4f}")
        return line

    # ----- step 4: the diffusion model with the discriminator's loss ---------------------------
    def _freeze_discriminator(self) -> None:
        self.model.discriminator.requires_grad_(False)
        self.model.discriminator.eval()

    def adversarial_losses(self, x0: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        """Noise loss, the discriminator's BCE on x̂0 labelled real, their weighted sum, viability (mean P(real))."""
        noise, x0_hat, _ = self.o.noise_losses(x0, c)
        logits = self.model.discriminator(x0_hat, c)
        disc = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return {"loss": noise + self.cfg.discriminator_weight * disc, "noise_loss": noise,
                "discriminator_loss": disc, "viability_score": torch.sigmoid(logits).mean()}

    def diffusion_epoch(self) -> dict[str, float]:
        z, c, _ = self.o.summaries()
        ctx = self.o.ctx
        order = torch.randperm(len(z), generator=self.o.rng)[ctx.rank :: ctx.world_size]  # this rank's share
        B, sums = self.cfg.batch_size, {}
        self.model.denoiser.train()
        for s in range(0, len(order), B):
            i = order[s : s + B]
            losses = self.adversarial_losses(self.model.normalize(z[i]), c[i])
            guard_finite(losses)
            self.o.apply(losses["loss"], self.opt)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(i)
        out = {k: v / len(order) for k, v in sums.items()}
        self.state["diff_epoch"] += 1
        if self.state["diff_epoch"] % self.cfg.loop_eval_every == 0:
            out.update(self.validate())
        if self.state["diff_epoch"] % self.cfg.loop_sample_every == 0:
            out["sample_viability"] = self.sample_viability()
        return out

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The loss terms on the validation summaries (EMA weights), the same draws every time."""
        z, c, _ = self.o.val_summaries()
        gen = torch.Generator().manual_seed(self.cfg.seed + 12345)
        m = self.model
        t = torch.randint(m.schedule.T, (len(z),), generator=gen)
        noise = torch.randn(z.shape, generator=gen)
        x_t = m.schedule.q_sample(m.normalize(z), t, noise)
        eps = m.predict_eps(m.ema, x_t, t, c)
        logits = m.discriminator(m.clip(m.schedule.predict_x0(x_t, t, eps)), c)
        noise_loss = F.mse_loss(eps, noise)
        disc = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return {"val_loss": float(noise_loss + self.cfg.discriminator_weight * disc),
                "val_noise_loss": float(noise_loss), "val_discriminator_loss": float(disc),
                "val_viability_score": float(torch.sigmoid(logits).mean())}

    @torch.no_grad()
    def sample_viability(self) -> float:
        """Mean P(real) the discriminator gives PREVIEW_SAMPLES ancestral-DDPM samples for validation conditions."""
        _, c, _ = self.o.val_summaries()
        c = c[:PREVIEW_SAMPLES]
        x = self.model.sample_latents(c, torch.Generator().manual_seed(self.cfg.seed + 7), sampler="ddpm")
        return float(torch.sigmoid(self.model.discriminator(x, c)).mean())

    def _diff_line(self, tag: str):
        def line(it: int, m: dict[str, float], its: float) -> str:
            rows = [f"{tag} Diffusion Epoch {it}/{self.cfg.diffusion_epochs}", f"Train Loss: {m['loss']:.6f}"]
            rows += [f"  {k}: {m[k]:.6f}" for k in ("noise_loss", "discriminator_loss", "viability_score")]
            if "val_loss" in m:
                rows.append(f"Val Loss: {m['val_loss']:.6f}")
                rows += [f"  {k}: {m[k]:.6f}" for k in ("val_noise_loss", "val_discriminator_loss",
                                                        "val_viability_score")]
            if "sample_viability" in m:
                rows.append(f"  {PREVIEW_SAMPLES} DDPM samples: viability {m['sample_viability']:.6f}")
            return "\n".join(rows)
        return line
