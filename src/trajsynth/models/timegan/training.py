"""TimeGAN's three phases: ``embedding``, ``supervised`` and ``joint``, as in the original code.

1. embedding: embedder + recovery on recon_weight·√MSE.
2. supervised: the supervisor on next-step prediction of the (fixed) embedder's embeddings.
3. joint: per iteration, k_generator times a generator + supervisor update (adversarial on both
   paths, γ, η·√supervised, moment gap) followed by an embedder + recovery update on the same
   batch; then one discriminator update, made only while its loss exceeds d_threshold.

Five Adam optimisers, one per update of the original. Batches are drawn at random, as the
original's, among sequences of similar length (``length_pool``), and every draw (batch indices,
noise) comes from one ``torch.Generator`` saved with the optimisers, so a run resumed from any
checkpoint ends with the weights of an uninterrupted one. Under ``torchrun`` every rank makes the
same draws and keeps its own batch.
"""

from __future__ import annotations

import math

import torch

from ...blocks.masks import length_mask
from ...optim import build_scheduler, step_scheduler
from ..base import FamilyTraining, Phase, guard_finite
from .config import TimeGANTrain
from .model import AUTOENCODER, DISCRIMINATOR, GENERATOR, TimeGAN

VAL_SEED = 12345  # offset of the validation draws' seed: the same draws at every evaluation
VAL_MAX = 1024  # validation sequences of the reconstruction and supervised scores
# optimiser → the parts it updates and the phase whose length its schedule spans
UPDATES = {"embedding": (AUTOENCODER, "embedding"), "supervised": (("supervisor",), "supervised"),
           "generator": (GENERATOR, "joint"), "embedder": (AUTOENCODER, "joint"),
           "discriminator": (DISCRIMINATOR, "joint")}


class TimeGANTraining(FamilyTraining):
    objectives: dict[str, tuple[str, ...]] = {}

    def __init__(self, model: TimeGAN, cfg: TimeGANTrain, data, ctx):
        super().__init__(model, cfg, data, ctx)
        # Benchmark windows come without a feature scaling (min-max scaled series); mouse data with one.
        model.fit_data(data.train.X, data.train.C, data.train.L, series=not data.normalization)
        totals = {"embedding": cfg.embedding_iterations, "supervised": cfg.supervised_iterations,
                  "joint": cfg.joint_iterations}
        self.params = {k: [p for part in parts for p in getattr(model, part).parameters()]
                       for k, (parts, _) in UPDATES.items()}
        self.opt = {k: torch.optim.Adam(p, lr=cfg.lr) for k, p in self.params.items()}
        self.sched = {k: build_scheduler(cfg.lr_schedule, self.opt[k], totals[phase])
                      for k, (_, phase) in UPDATES.items()}
        self.rng = torch.Generator().manual_seed(cfg.seed + 1)  # every training draw
        # Sorting by length gains nothing on fixed-length windows: there, plain random batches as the original.
        varied = bool(data.train.L.min() < data.train.L.max())
        self.length_pool = cfg.length_pool if varied else 1

    # ----- state -------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"optimizers": {k: o.state_dict() for k, o in self.opt.items()},
                "schedulers": {k: s.state_dict() for k, s in self.sched.items() if s is not None},
                "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        for k, o in self.opt.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.sched.items():
            if s is not None and k in state["schedulers"]:
                s.load_state_dict(state["schedulers"][k])
        self.rng.set_state(state["rng"])

    def phases(self) -> list[Phase]:
        c = self.cfg
        return [
            Phase("embedding", c.embedding_iterations, self.embedding_step, self.evaluate_embedding,
                  self._line("embedding", c.embedding_iterations, ("recon_rmse",)), tracked="val_recon",
                  parts=AUTOENCODER, preview=self._preview_reconstruction,
                  on_evaluate=self._plateau("embedding", "val_recon")),
            Phase("supervised", c.supervised_iterations, self.supervised_step, self.evaluate_supervised,
                  self._line("supervised", c.supervised_iterations, ("supervised_rmse",)),
                  tracked="val_supervised", parts=("supervisor",),
                  on_evaluate=self._plateau("supervised", "val_supervised")),
            Phase("joint", c.joint_iterations, self.joint_step, self.evaluate_joint,
                  self._line("joint", c.joint_iterations, JOINT_COLUMNS + (("dV",) if c.diff_moment_weight else ())),
                  tracked="val_moments",
                  parts=AUTOENCODER + GENERATOR + DISCRIMINATOR, preview=self._preview_generated,
                  on_evaluate=self._plateau(("generator", "embedder", "discriminator"), "val_moments")),
        ]

    # ----- draws ---------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """A random batch (u (B, T', F) in model range, c (B, C), mask (B, T'), noise (B, T', Z)).

        A pool of length_pool × B × world_size random sequences is sorted by length and cut into
        batches; the ranks take consecutive batches from a random one. T' is the longest of the batches
        taken, so every rank makes the same draws and the generator's state stays one (and is saved).
        """
        ds, B, world, r = self.data.train, self.cfg.batch_size, self.ctx.world_size, self.ctx.rank
        parts = self.length_pool * world
        pool = torch.randint(len(ds), (parts * B,), generator=self.rng)
        first = 0  # one part: a plain random batch, drawn exactly as before pools existed
        if parts > 1:
            pool = pool[torch.argsort(ds.L[pool], stable=True)]  # by length
            first = int(torch.randint(parts, (1,), generator=self.rng))
        pool = pool.view(parts, B)
        taken = pool[(first + torch.arange(world)) % parts]  # (world, B): one batch per rank
        T = int(ds.L[taken].max())
        z = torch.rand(world, B, T, self.model.cfg.z_dim, generator=self.rng)[r]  # U[0, 1), as the original
        idx = taken[r]
        return self.model.to_model(ds.X[idx, :T]), ds.C[idx], length_mask(ds.L[idx], T), z

    def _update(self, name: str, loss: torch.Tensor) -> None:
        """One optimiser step of ``name`` on ``loss``: gradients of its parameters only (no others are computed)."""
        params = self.params[name]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        self.ctx.sync_grads(params)
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        self.opt[name].step()
        step_scheduler(self.sched[name])

    # ----- phase 1: embedding ----------------------------------------------------
    def embedding_step(self) -> dict[str, float]:
        u, _, mask, _ = self._batch()
        self.model.train()
        mse, _ = self.model.reconstruction_mse(u, mask)
        loss = self.cfg.recon_weight * mse.sqrt()
        guard_finite({"recon": loss})
        self._update("embedding", loss)
        return {"recon_rmse": float(mse.detach().sqrt())}

    # ----- phase 2: supervised -----------------------------------------------------
    def supervised_step(self) -> dict[str, float]:
        u, _, mask, _ = self._batch()
        self.model.train()
        with torch.no_grad():  # the embedder is not trained here
            h = self.model.embedder(u)
        mse = self.model.supervised_mse(h, mask)
        guard_finite({"supervised": mse})
        self._update("supervised", mse)
        return {"supervised_rmse": float(mse.detach().sqrt())}

    # ----- phase 3: joint ------------------------------------------------------------
    def joint_step(self) -> dict[str, float]:
        m, cfg = self.model, self.cfg
        m.train()
        sums: dict[str, float] = {}
        for _ in range(cfg.k_generator):
            u, c, mask, z = self._batch()
            g = m.generator_losses(u, c, z, mask, cfg)
            guard_finite(g)
            self._update("generator", g["total"])
            e = m.embedder_losses(u, mask, cfg)  # the same batch, after the generator's update
            guard_finite(e)
            self._update("embedder", e["total"])
            logged = {"G_U": g["adv"], "G_U_e": g["adv_e"], "S_rmse": g["supervised"].sqrt(), "V": g["moments"],
                      "E_rmse": e["recon"].sqrt()}
            if "diff_moments" in g:
                logged["dV"] = g["diff_moments"]
            for key, v in logged.items():
                sums[key] = sums.get(key, 0.0) + float(v.detach()) / cfg.k_generator
        return {**sums, **self.discriminator_step()}

    def discriminator_step(self) -> dict[str, float]:
        """The discriminator's loss on a fresh batch; its update only while the loss exceeds d_threshold.

        The decision is taken on the loss averaged over the ranks, so all ranks update or none does.
        """
        u, c, mask, z = self._batch()
        d = self.model.discriminator_losses(u, c, z, mask, self.cfg)
        guard_finite(d)
        loss = self.ctx.average({"D": float(d["total"].detach())})["D"]
        update = loss > self.cfg.d_threshold
        if update:
            self._update("discriminator", d["total"])
        return {"D": float(d["total"].detach()), "D_updated": float(update)}

    # ----- validation ------------------------------------------------------------------
    def _val(self, n: int = VAL_MAX):
        ds = self.data.val or self.data.train
        x, c, L = ds.batch(torch.arange(min(n, len(ds))))
        return x, c, L, length_mask(L, x.size(1))

    @torch.no_grad()
    def evaluate_embedding(self) -> dict[str, float]:
        x, _, _, mask = self._val()
        self.model.eval()
        return {"val_recon": float(self.model.reconstruction_mse(self.model.to_model(x), mask)[0])}

    @torch.no_grad()
    def evaluate_supervised(self) -> dict[str, float]:
        x, _, _, mask = self._val()
        self.model.eval()
        h = self.model.embedder(self.model.to_model(x))
        return {"val_supervised": float(self.model.supervised_mse(h, mask))}

    @torch.no_grad()
    def evaluate_joint(self) -> dict[str, float]:
        """Reconstruction, supervised error, and the moment gap of generated sequences for validation conditions."""
        ev = {**self.evaluate_embedding(), **self.evaluate_supervised()}
        x, c, L, mask = self._val(self.cfg.eval_samples)
        X, L_gen = self.model.generate(len(c), c, rng=torch.Generator().manual_seed(self.cfg.seed + VAL_SEED))
        ev["val_moments"] = pooled_moment_gap(X, L_gen, x, L)
        ev["val_length_mean"], ev["val_length_mean_real"] = float(L_gen.double().mean()), float(L.double().mean())
        return ev

    def _plateau(self, names, key: str):
        names = (names,) if isinstance(names, str) else names
        return lambda ev: [step_scheduler(self.sched[n], ev[key]) for n in names]

    def _preview_reconstruction(self, n: int) -> tuple:
        x, c, L, _ = self._val(n)
        self.model.eval()
        return x, self.model.reconstruct(x, L)[0], c, L, L, "reconstructed"

    def _preview_generated(self, n: int) -> tuple:
        ds = self.data.val or self.data.train
        x, c, L = ds.batch(torch.arange(min(n, len(ds))), trim=False)  # (n, max_seq_len, F), as generated
        X, L_gen = self.model.generate(len(c), c, rng=torch.Generator().manual_seed(self.cfg.seed + VAL_SEED))
        return x, X, c, L, L_gen, "generated"

    def _line(self, name: str, total: int, columns: tuple[str, ...]):
        def line(it: int, mean: dict[str, float], its: float) -> str:
            parts = [f"{LABELS[k]} {mean[k]:.4f}" for k in columns]
            if "D_updated" in mean:
                parts.append(f"D updated {mean['D_updated']:.0%}")
            return f"[{name}] Iter {it:6d}/{total} | " + " | ".join(parts) + f" | {its:.1f} it/s"
        return line


JOINT_COLUMNS = ("D", "G_U", "G_U_e", "S_rmse", "V", "E_rmse")
LABELS = {"recon_rmse": "recon √MSE", "supervised_rmse": "supervised √MSE", "D": "D", "G_U": "G adv",
          "G_U_e": "G adv (raw)", "S_rmse": "S √MSE", "V": "moments", "E_rmse": "recon √MSE", "dV": "diff moments"}


def pooled_moment_gap(X: torch.Tensor, L: torch.Tensor, X_ref: torch.Tensor, L_ref: torch.Tensor) -> float:
    """Mean over features of |σ̂ − σ| + |μ̂ − μ|, each feature's statistics pooled over all valid steps."""
    def stats(x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = x[length_mask(lengths, x.size(1))].double()  # (steps, F)
        return v.mean(0), v.std(0, correction=0)

    (m, s), (m_ref, s_ref) = stats(X, L), stats(X_ref, L_ref)
    gap = float(((m - m_ref).abs() + (s - s_ref).abs()).mean())
    return gap if math.isfinite(gap) else float("inf")
