"""The two phases of the latent WGAN-GP: ``stage1`` (autoencoder) and ``stage2`` (WGAN-GP on frozen summaries).

Every random draw comes from state that is saved in checkpoints (the per-epoch batch order of
stage 1 is a function of (seed, epoch) and the position in the epoch; stage 2 draws from one
``torch.Generator``), so a run resumed from any checkpoint ends with the same weights as the same
run left alone. Under ``torchrun`` every rank holds the same state: stage 1 deals each rank its own
batches of one order, stage 2 makes one draw of indices and noise for all ranks and each keeps its
slice (see ``_share``).
"""

from __future__ import annotations

import torch

from ...data.loading import LengthAwareBatchSampler, TrajectoryDataset
from ...metrics.distribution import coverage_density, mmd_rbf
from ...optim import build_scheduler, step_scheduler
from ..base import FamilyTraining, Phase, guard_finite
from .model import AUTOENCODER_PARTS, end_directions
from .scores import stage1_scores, stage2_disc

GAN_PARTS = ("generator", "critic")


class LatentWGANTraining(FamilyTraining):
    objectives = {"stage1": ("recon_mse", "latent_rel_err"), "stage2": ("mmd", "disc")}

    def __init__(self, model, cfg, data, ctx):
        super().__init__(model, cfg, data, ctx)
        adam = dict(fused=True)  # one kernel per step instead of one per tensor: small nets are overhead-bound
        self.opt_ae = torch.optim.Adam(model.autoencoder_parameters(), lr=cfg.lr_autoencoder, **adam)
        self.opt_g = torch.optim.Adam(model.generator.parameters(), lr=cfg.lr_generator, betas=(0.0, 0.9), **adam)
        self.opt_d = torch.optim.Adam(model.critic.parameters(), lr=cfg.lr_discriminator, betas=(0.0, 0.9), **adam)
        self.sched = {"ae": build_scheduler(cfg.lr_schedule, self.opt_ae, cfg.stage1_iterations),
                      "g": build_scheduler(cfg.lr_schedule, self.opt_g, cfg.stage2_iterations),
                      "d": build_scheduler(cfg.lr_schedule, self.opt_d, cfg.stage2_iterations)}
        self.rng = torch.Generator().manual_seed(cfg.seed + 1)  # all stage-2 randomness
        self.pos = {"epoch": 0, "batch_pos": 0}  # where stage 1 is in its batch order
        self._z_cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self._val_z_cache: torch.Tensor | None = None
        self._batches = None
        if model.directed and float(model.angle_hist.sum()) == 0:  # a fresh directed model: its directions
            model.set_directions(data.train.X, data.train.L)

    # ----- state -------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"optimizers": {"ae": self.opt_ae.state_dict(), "g": self.opt_g.state_dict(),
                               "d": self.opt_d.state_dict()},
                "schedulers": {k: s.state_dict() for k, s in self.sched.items() if s is not None},
                "rng": self.rng.get_state(), **self.pos}

    def load_state_dict(self, state: dict) -> None:
        for key, opt in (("ae", self.opt_ae), ("g", self.opt_g), ("d", self.opt_d)):
            opt.load_state_dict(state["optimizers"][key])
        for key, s in self.sched.items():
            if s is not None and key in state["schedulers"]:
                s.load_state_dict(state["schedulers"][key])
        self.rng.set_state(state["rng"])
        self.pos = {"epoch": state["epoch"], "batch_pos": state["batch_pos"]}

    def shared_cache(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.real_summaries()

    def share(self, cache: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Use (summaries, conditions) of the training set encoded by the same frozen autoencoder
        elsewhere, e.g. by an earlier hyperparameter-search trial, instead of encoding them again."""
        if len(cache[0]) != len(self.data.train) or cache[0].size(1) != self.model.cfg.summary_dim:
            raise ValueError(f"summary cache of shape {tuple(cache[0].shape)} does not fit this run's data")
        self._z_cache = cache

    def score(self, phase: str, best_ev: dict, eval_samples: int, disc_iterations: int) -> dict[str, float]:
        """stage1: reconstruction and latent error; stage2: summary MMD, discriminative score, coverage."""
        ds = self.data.val or self.data.train
        if phase == "stage1":
            return stage1_scores(self.model, ds)
        disc = stage2_disc(self.model, ds, eval_samples, disc_iterations, seed=self.cfg.seed)
        return {"mmd": best_ev["val_mmd_summary"], "disc": disc, "coverage": best_ev["val_coverage"],
                "density": best_ev["val_density"], "condition_mae": best_ev["val_condition_mae"]}

    def phases(self) -> list[Phase]:
        c = self.cfg
        stage1 = Phase("stage1", c.stage1_iterations, self.stage1_step, self.evaluate_stage1, self._line1,
                       tracked="val_recon", parts=AUTOENCODER_PARTS, converged=self._converged, projector=True,
                       preview=self._preview1, on_evaluate=lambda ev: step_scheduler(self.sched["ae"], ev["val_recon"]))
        stage2 = Phase("stage2", c.stage2_iterations, self.stage2_step, self.evaluate_stage2, self._line2,
                       tracked="val_mmd_summary", parts=GAN_PARTS, start=self.model.freeze_autoencoder,
                       preview=self._preview2, on_evaluate=self._plateau2)
        return [stage1, stage2]

    # ----- stage 1 -----------------------------------------------------------
    def _stage1_batches(self):
        """Length-aware batches, epoch after epoch, resuming at (epoch, batch_pos).

        With several processes, rank r takes every world_size-th batch of the same order, so each
        batch still holds sequences of similar length and the ranks never see the same one.
        """
        ds, cfg, ctx = self.data.train, self.cfg, self.ctx
        sampler = LengthAwareBatchSampler(ds.L.numpy(), cfg.batch_size, seed=cfg.seed,
                                          drop_last=len(ds) >= cfg.batch_size)
        while True:
            sampler.set_epoch(self.pos["epoch"])
            batches = list(sampler)
            usable = len(batches) - len(batches) % ctx.world_size if len(batches) >= ctx.world_size else 0
            for pos in range(self.pos["batch_pos"], usable, ctx.world_size):
                self.pos["batch_pos"] = pos + ctx.world_size
                yield batches[pos + ctx.rank]
            if usable == 0:  # fewer batches than processes: every rank takes batch rank % n
                self.pos["batch_pos"] = 0
                yield batches[ctx.rank % len(batches)]
            self.pos["epoch"] += 1
            self.pos["batch_pos"] = 0

    def stage1_step(self) -> dict:
        if self._batches is None:
            self._batches = self._stage1_batches()
        x, c, L = self.data.train.batch(next(self._batches))  # (B, T', F), (B, 1), (B,)
        self.model.train()
        _, losses = self.model.forward_autoencoder(x, L, c, self.cfg)
        guard_finite(losses)
        self.opt_ae.zero_grad(set_to_none=True)
        losses["total"].backward()
        params = self.model.autoencoder_parameters()
        self.ctx.sync_grads(params)
        self._clip(params)
        self.opt_ae.step()
        step_scheduler(self.sched["ae"])
        return {k: float(v.detach()) for k, v in losses.items()}

    def _clip(self, params) -> None:
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)

    @torch.no_grad()
    def evaluate_stage1(self, max_n: int = 1024) -> dict:
        ds = self.data.val or self.data.train
        self.model.eval()
        x, c, L = ds.batch(torch.arange(min(len(ds), max_n)))
        _, losses = self.model.forward_autoencoder(x, L, c, self.cfg)
        return {f"val_{k}": float(v) for k, v in losses.items()}

    def _converged(self, it: int, mean: dict) -> str | None:
        cfg = self.cfg
        if it < cfg.stage1_min_iterations or mean["direct"] >= cfg.stage1_threshold:
            return None
        return f"Stage 1 converged at iteration {it} (direct {mean['direct']:.4f} < threshold {cfg.stage1_threshold})"

    def _line1(self, it: int, mean: dict, its: float) -> str:
        return (f"[Stage 1] Iter {it:6d}/{self.cfg.stage1_iterations} | Direct {mean['direct']:.4f} | "
                f"Recon {mean['recon']:.4f} | Latent {mean['latent']:.4f} | Len {mean['length']:.3f} | "
                + (f"Residual NLL {mean['residual_nll']:.3f} | " if "residual_nll" in mean else "")
                + f"{its:.1f} it/s")

    @torch.no_grad()
    def _preview1(self, n: int) -> tuple:
        x, c, L = self._val_batch(n)
        self.model.eval()
        return x, self.model.forward_autoencoder(x, L, c, self.cfg)[0], c, L, L, "reconstructed"

    def _val_batch(self, n: int):
        ds = self.data.val or self.data.train
        return ds.batch(torch.arange(min(n, len(ds))))

    # ----- stage 2 -----------------------------------------------------------
    def summaries(self, ds: TrajectoryDataset) -> torch.Tensor:
        """Frozen encoder's summaries of a whole dataset (N, S)."""
        self.model.eval()
        return self.model.encode_all(ds.X, ds.L)

    def real_summaries(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached once: the encoder is frozen, so real summaries never change in stage 2."""
        if self._z_cache is None:
            ds = self.data.train
            self._z_cache = (self.summaries(ds), self.model.full_condition(ds.C, ds.X, ds.L))
        return self._z_cache

    def _sample_idx(self) -> torch.Tensor:
        """Each rank's share of one draw of world_size × batch indices (one draw: the ranks' RNGs stay equal)."""
        B, world = self.cfg.batch_size, self.ctx.world_size
        idx = torch.randint(len(self.data.train), (B * world,), generator=self.rng)
        return idx[self.ctx.rank * B : (self.ctx.rank + 1) * B]

    def _share(self, draw, *shape: int) -> torch.Tensor:
        """This rank's rows of one ``draw`` (torch.randn or torch.rand) of world_size × shape[0] rows.

        Noise is drawn like the indices: every rank makes the same draw from the shared generator and
        keeps its slice, so ranks train on different noise while ``self.rng`` stays one state, equal
        on all ranks and in the checkpoint rank 0 writes (a checkpoint resumes under any process
        count). With one process this is exactly the draw the model would make from ``self.rng``.
        """
        B, world, r = shape[0], self.ctx.world_size, self.ctx.rank
        return draw(B * world, *shape[1:], generator=self.rng)[r * B : (r + 1) * B]

    def _critic_step(self, z_all: torch.Tensor, c_all: torch.Tensor) -> dict:
        m, cfg = self.model, self.cfg
        idx = self._sample_idx()
        noise = self._share(torch.randn, len(idx), m.cfg.noise_dim)
        alpha = self._share(torch.rand, len(idx), 1)  # the gradient penalty's mixing weights
        d = m.forward_discriminator(z_all[idx], c_all[idx], w=cfg, noise=noise, alpha=alpha)
        guard_finite(d)
        self.opt_d.zero_grad(set_to_none=True)
        d["total"].backward()
        self.ctx.sync_grads(list(m.critic.parameters()))
        self.opt_d.step()
        return d

    def stage2_step(self) -> dict:
        z_all, c_all = self.real_summaries()
        m, cfg = self.model, self.cfg
        m.critic.train(), m.generator.train()
        for _ in range(cfg.n_critic):
            d = self._critic_step(z_all, c_all)
        idx = self._sample_idx()
        noise = self._share(torch.randn, len(idx), m.cfg.noise_dim)
        g = m.forward_generator(c_all[idx], z_all[idx], w=cfg, noise=noise)
        guard_finite(g)
        self.opt_g.zero_grad(set_to_none=True)
        g["total"].backward()
        params = list(m.generator.parameters())
        self.ctx.sync_grads(params)
        self._clip(params)
        self.opt_g.step()
        step_scheduler(self.sched["d"]), step_scheduler(self.sched["g"])
        out = {"D": float(d["total"].detach()), "W": float(d["wasserstein"]), "GP": float(d["gp"]),
               "G": float(g["adv"].detach())}
        out.update({k: float(v.detach()) for k, v in g.items() if k in ("fm", "cond_guard")})
        return out

    @torch.no_grad()
    def evaluate_stage2(self, max_n: int = 1024) -> dict:
        ds = self.data.val or self.data.train
        n, m = min(len(ds), max_n), self.model
        m.eval()
        if self._val_z_cache is None or len(self._val_z_cache) != n:  # frozen encoder: encode once
            self._val_z_cache = m.encode_all(ds.X[:n], ds.L[:n])
        z_real, c = self._val_z_cache, m.full_condition(ds.C[:n], ds.X[:n], ds.L[:n])
        gen = torch.Generator().manual_seed(self.cfg.seed + 12345)  # eval draws never touch training RNG
        z_fake = m.generator(torch.randn(n, m.cfg.noise_dim, generator=gen), c)
        cond_err = float((m.condition_head(z_fake) - c).abs().mean())
        # The evaluation suite's own latent metrics (pure functions), cheap on 1024 summaries.
        cd = coverage_density(z_real.numpy(), z_fake.numpy())
        return {"val_mmd_summary": mmd_rbf(z_real.numpy(), z_fake.numpy(), seed=self.cfg.seed),
                "val_coverage": cd["coverage"], "val_density": cd["density"], "val_condition_mae": cond_err}

    def _plateau2(self, ev: dict) -> None:
        step_scheduler(self.sched["g"], ev["val_mmd_summary"]), step_scheduler(self.sched["d"], ev["val_mmd_summary"])

    def _line2(self, it: int, mean: dict, its: float) -> str:
        return (f"[Stage 2] Iter {it:6d}/{self.cfg.stage2_iterations} | D {mean['D']:.4f} | G {mean['G']:.4f} | "
                f"W {mean['W']:.4f} | {its:.1f} it/s")

    @torch.no_grad()
    def _preview2(self, n: int) -> tuple:
        x, c, L = self._val_batch(n)
        self.model.eval()
        gen = torch.Generator().manual_seed(self.cfg.seed + 7)
        ends = None
        if self.model.directed:  # toward the real movements' directions (any length: only the direction is used)
            ends = end_directions(x, L)
        x_fake, L_fake = self.model.generate(len(c), c, rng=gen, targets=ends)
        return x, x_fake, c, L, L_fake, "generated"
