"""The TCN-VAE's one phase ``fit``: epochs of shuffled batches with the design's loss and schedule.

Per batch: small Gaussian noise on the inputs, the reversal strength α = 2 / (1 + exp(−10·p)) − 1
with p the progress over the first ``grl_epochs`` epochs' worth of batches, β (optionally warmed
up), one AdamW step with gradient clipping; per epoch: a step of cosine annealing with warm
restarts and a validation (loss, activity accuracy). The best validation activity accuracy keeps
its weights (a tie: a validation loss lower by over 0.1 %); after ``patience`` epochs without a
better one the phase stops early, and the phase ends with the best weights, whose per-activity
latent distributions are then fitted for generation.

Batch order is a function of (seed, epoch) and the position in the epoch; the noise comes from one
``torch.Generator`` saved with the optimiser, so a resumed run ends with the weights of an
uninterrupted one.
"""

from __future__ import annotations

import math

import torch

from ...blocks.masks import length_mask
from ..base import FamilyTraining, Phase, guard_finite
from .config import TCNVAETrain
from .model import TCNVAE

VAL_CHUNK = 512
TIE_MARGIN = 1e-3  # relative: how much lower a tied accuracy's validation loss must be to count as better
LOGGED = ("vae", "recon", "mse", "kl", "activity", "domain", "mmd", "act_acc", "dom_acc", "alpha", "beta")


def labels_of(ds) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset's activity and domain labels (N,) int64; zeros where it has none."""
    zeros = torch.zeros(len(ds), dtype=torch.int64)
    A, D = getattr(ds, "A", None), getattr(ds, "D", None)
    return (zeros if A is None else A), (zeros if D is None else D)


def class_counts(data) -> tuple[int, int]:
    """Activities and domains of a run's data: the label names when given, else the labels seen (at least 1)."""
    names = getattr(data, "labels", None) or {}
    sets = [s for s in (data.train, data.val) if s is not None]
    counts = []
    for i, key in enumerate(("activity", "domain")):
        seen = max(int(labels_of(s)[i].max()) + 1 if len(s) else 1 for s in sets)
        counts.append(max(len(names.get(key) or []), seen))
    return counts[0], counts[1]


class TCNVAETraining(FamilyTraining):
    objectives: dict[str, tuple[str, ...]] = {}

    def __init__(self, model: TCNVAE, cfg: TCNVAETrain, data, ctx):
        super().__init__(model, cfg, data, ctx)
        ds = data.train
        model.resolve(ds.X.shape[2], *class_counts(data))
        model.lengths.fit(ds.C[:, 0], ds.L)
        self.per_epoch = math.ceil(len(ds) / cfg.batch_size)
        # Validation (and the early-stopping decision) after every epoch: the loop's intervals follow the epoch.
        cfg.eval_interval = self.per_epoch
        cfg.log_interval = min(cfg.log_interval, self.per_epoch)
        self.opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            self.opt, T_0=cfg.restart_epochs, T_mult=cfg.restart_mult)
        self.rng = torch.Generator().manual_seed(cfg.seed + 1)  # input noise
        self.it = 0  # batches done
        self.best = {"acc": -1.0, "loss": math.inf, "epoch": 0, "stale": 0, "state": None}
        self._order: tuple[int, torch.Tensor] | None = None

    # ----- state -------------------------------------------------------------
    def state_dict(self) -> dict:
        best = dict(self.best)
        return {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "rng": self.rng.get_state(), "it": self.it, "best": best}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.rng.set_state(state["rng"])
        self.it = int(state["it"])
        self.best = dict(state["best"])

    def phases(self) -> list[Phase]:
        total = self.cfg.epochs * self.per_epoch
        return [Phase("fit", total, self.step, self.evaluate, self.line, tracked="val_loss",
                      parts=tuple(n for n, _ in self.model.named_children()), converged=self.converged,
                      on_evaluate=self.on_evaluate, finish=self.finish, projector=True)]

    # ----- one batch -----------------------------------------------------------
    def _batch_indices(self) -> torch.Tensor:
        epoch, b = divmod(self.it, self.per_epoch)
        if self._order is None or self._order[0] != epoch:
            g = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
            self._order = (epoch, torch.randperm(len(self.data.train), generator=g))
        B = self.cfg.batch_size
        return self._order[1][b * B : (b + 1) * B]

    def weights_now(self) -> tuple[float, float]:
        """(α, β) for the batch about to be taken."""
        c = self.cfg
        p = min(1.0, self.it / (c.grl_epochs * self.per_epoch))
        alpha = 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0
        warm = c.beta_warmup_epochs * self.per_epoch
        beta = c.beta * min(1.0, (self.it + 1) / warm) if warm else c.beta
        return alpha, beta

    def step(self) -> dict[str, float]:
        ds, cfg, m = self.data.train, self.cfg, self.model
        idx = self._batch_indices()
        x, c, L = ds.batch(idx)  # (B, T, F), (B, C), (B,)
        act, dom = (v[idx] for v in labels_of(ds))
        noise = torch.randn(x.shape, generator=self.rng) * cfg.noise_std
        x_in = x + noise * length_mask(L, x.size(1)).unsqueeze(-1)
        alpha, beta = self.weights_now()
        m.train()
        out = m.losses(x, x_in, c, L, act, dom, alpha, beta, cfg)
        guard_finite({k: out[k] for k in ("total", "vae", "activity", "domain")})
        self.opt.zero_grad(set_to_none=True)
        out["total"].backward()
        params = [p for p in m.parameters() if p.grad is not None]
        self.ctx.sync_grads(params)
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        self.opt.step()
        self.it += 1
        if self.it % self.per_epoch == 0:
            self.sched.step()
        return {**{k: float(out[k].detach()) for k in LOGGED if k in out}, "alpha": alpha, "beta": beta}

    # ----- validation, best weights, early stopping --------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        ds = self.data.val or self.data.train
        act, dom = labels_of(ds)
        alpha, beta = self.weights_now()
        self.model.eval()
        sums: dict[str, float] = {}
        for s in range(0, len(ds), VAL_CHUNK):
            idx = torch.arange(s, min(s + VAL_CHUNK, len(ds)))
            x, c, L = ds.batch(idx)
            out = self.model.losses(x, x, c, L, act[idx], dom[idx], alpha, beta, self.cfg)
            for k in ("total", "mse", "kl", "activity", "act_acc", "dom_acc"):
                sums[k] = sums.get(k, 0.0) + float(out[k]) * len(idx) / len(ds)
        return {"val_loss": sums["total"], "val_mse": sums["mse"], "val_kl": sums["kl"],
                "val_activity": sums["activity"], "val_act_acc": sums["act_acc"], "val_dom_acc": sums["dom_acc"]}

    def on_evaluate(self, ev: dict[str, float]) -> None:
        """Keep the weights of the best validation activity accuracy; a tie goes to a validation loss lower by
        over TIE_MARGIN (on data where one class dominates, the accuracy can sit at the majority share from the
        first epoch on)."""
        b, acc = self.best, ev["val_act_acc"]
        if acc > b["acc"] or (acc == b["acc"] and ev["val_loss"] < b["loss"] - TIE_MARGIN * abs(b["loss"])):
            b.update(acc=ev["val_act_acc"], loss=ev["val_loss"], epoch=self.it // self.per_epoch, stale=0,
                     state={k: v.detach().clone() for k, v in self.model.state_dict().items()})
        else:
            b["stale"] += 1

    def converged(self, it: int, mean: dict[str, float]) -> str | None:
        b, patience = self.best, self.cfg.patience
        if patience and b["stale"] >= patience:
            return (f"early stop at epoch {self.it // self.per_epoch}: validation activity accuracy has not improved "
                    f"for {b['stale']} epochs (best {b['acc']:.4f} at epoch {b['epoch']})")
        return None

    def finish(self) -> None:
        """The best weights, then each activity's latent distribution from the training sequences."""
        if self.best["state"] is not None:
            self.model.load_state_dict(self.best["state"])
        ds = self.data.train
        act, dom = labels_of(ds)
        mu, logvar = self.model.posterior(ds.X, ds.L, VAL_CHUNK)  # (N, Z) each
        self.model.fit_classes(mu, logvar, act, dom)

    def line(self, it: int, mean: dict[str, float], its: float) -> str:
        epoch, batch = (it - 1) // self.per_epoch + 1, (it - 1) % self.per_epoch + 1
        return (f"Epoch: {epoch}, Batch: {batch}, VAE Loss: {mean['vae']:.4f}, Activity Loss: {mean['activity']:.4f}, "
                f"Domain Loss: {mean['domain']:.4f} | activity acc {mean['act_acc']:.3f} | α {mean['alpha']:.3f} "
                f"| {its:.1f} it/s")
