"""The ar_mdn family's one phase, ``fit``: teacher-forced maximum likelihood of every logged step.

The training movements' integer paths are recovered exactly from their features (the format's
inverse). Batches are length-aware (similar lengths together, trimmed to the longest) and their
order is a function of (seed, epoch) and the position in the epoch; the dequantisation noise of a
batch is drawn from a generator seeded by the step counter. All of it is in :meth:`state_dict`,
so a resumed run ends with the weights of an uninterrupted one. Validation measures the NLL of
validation movements and generates a few hundred for their distances.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...config import ConfigError
from ...data.features import NormalizationParams, features_to_paths, pad_paths
from ...data.loading import LengthAwareBatchSampler, TrajectoryDataset
from ...optim import build_scheduler, step_scheduler
from ..base import FamilyTraining, Phase, guard_finite
from .adversarial import AdversarialPhase
from .config import ARMDNTrain
from .critic import CriticPhase
from .model import ARRIVE, MOVE, PRESS, ARMDNModel, dequantization_noise, to_frame

PARTS = ("dt_embed", "inp", "rnn", "event_head", "dt_head", "mix_head", "mix_out", "grid_out", "norm", "angle_hist",
         "plan_edges", "plan_records", "plan_angles", "step_cap_px")
NLL_CHUNK = 256  # validation movements per teacher-forced chunk
VAL_SEED = 12345  # offset of the validation draws' seed: the same draws at every evaluation


def plan_shape(P: torch.Tensor, end: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """Each movement's shape (N, 2): the lateral excursion (the target-frame y of the point farthest from the
    straight line, / distance: its side and size) and the share of the duration spent before the cursor first
    covers 90 % of the distance along the line. P (N, T, 3) padded with each last point, end (N, 3), D (N,)."""
    cos, sin = (end[:, 1] / D)[:, None], (end[:, 2] / D)[:, None]  # (N, 1)
    along = (P[..., 1] * cos + P[..., 2] * sin) / D[:, None]  # (N, T) in units of the distance
    across = (P[..., 2] * cos - P[..., 1] * sin) / D[:, None]
    rows = torch.arange(len(D))
    lateral = across[rows, across.abs().argmax(1)]  # (N,)
    first = (along >= 0.9).to(torch.int8).argmax(1)  # the first such point (the end is one)
    share = P[rows, first, 0] / end[:, 0].clamp_min(1.0)
    return torch.stack([lateral, share.clamp(0.0, 1.0)], -1)


@dataclass
class Movements:
    """Integer paths of one split, padded with each last point: P (N, T, 3) float64 (t, x, y), L (N,), C (N,),
    and each movement's plan (N, PLAN_DIM + PLAN_SHAPE_DIM): log duration (ms), log reach (farthest point /
    distance), lateral excursion / distance and the time share before 90 % of the distance (a model reads
    the first ``plan_dim`` columns)."""

    P: torch.Tensor
    L: torch.Tensor
    C: torch.Tensor
    X: torch.Tensor | None = None  # the split's features (N, T, 8) float32, for the critic
    plan: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        rows = torch.arange(len(self.L))
        end = self.P[rows, self.L - 1]  # (N, 3)
        D = end[:, 1:].norm(dim=-1).clamp_min(1.0)
        reach = self.P[..., 1:].norm(dim=-1).amax(1) / D  # (N,) >= 1 (the end is at D)
        self.plan = torch.cat([torch.stack([end[:, 0].clamp_min(1.0).log(), reach.clamp_min(1.0).log()], -1),
                               plan_shape(self.P, end, D)], -1)

    @classmethod
    def of(cls, ds: TrajectoryDataset, params: NormalizationParams) -> Movements:
        C = ds.C.numpy().reshape(len(ds), -1)[:, 0]  # (N,)
        paths = features_to_paths(ds.X.numpy(), C, ds.L.numpy(), params)
        P, L = pad_paths([np.round(p) for p in paths], ds.max_len)  # the logs are integer ms and px
        return cls(torch.as_tensor(P), torch.as_tensor(L), torch.as_tensor(C, dtype=torch.float64), ds.X)

    def ends(self) -> torch.Tensor:
        return self.P[torch.arange(len(self.L)), self.L - 1, 1:]  # (N, 2)

    def longest_step(self) -> float:
        return float((self.P[:, 1:, 1:] - self.P[:, :-1, 1:]).norm(dim=-1).max())

    def batch(self, model: ARMDNModel, idx: torch.Tensor, noise: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The teacher-forcing batch of movements ``idx``: what :meth:`ARMDNModel.losses` reads.

        noise (B, S, 2) px is added to the integer steps (dequantisation), or None.
        """
        L = self.L[idx]
        S = int(L.max()) - 1
        P = self.P[idx, : S + 1]  # (B, S+1, 3)
        d = P[:, 1:] - P[:, :-1]  # (B, S, 3) steps: dt, dx, dy
        target = P[torch.arange(len(idx)), L - 1, 1:]  # (B, 2)
        D = target.norm(dim=-1).clamp_min(1.0)
        cos, sin = (target[:, 0] / D)[:, None], (target[:, 1] / D)[:, None]  # (B, 1)
        k = torch.arange(S, dtype=torch.float64)[None, :].expand(len(idx), S)
        prev = torch.cat([torch.zeros_like(d[:, :1]), d[:, :-1]], 1)  # (B, S, 3) the step before
        rem = to_frame(target[:, None, :] - P[:, :S, 1:], cos, sin)  # (B, S, 2)
        prev_cls = torch.where(k == 0, model.n_dt, model.dt_class(prev[..., 0]))
        prev_frame = to_frame(prev[..., 1:], cos, sin)
        scale = model.scale(rem, prev_frame, D[:, None].expand(-1, S))
        step = d[..., 1:] + (noise if noise is not None else 0.0)
        full = lambda v: v.expand(-1, S)  # noqa: E731 - per-movement values at every step
        return {"rem": rem, "prev": prev_frame, "prev_dt": prev[..., 0], "prev_cls": prev_cls,
                "t": P[:, :S, 0], "k": k, "D": full(D[:, None]), "c": full(self.C[idx][:, None]),
                "dir_cos": full(cos), "dir_sin": full(sin),
                "plan": self.plan[idx][:, None, : model.plan_dim].expand(-1, S, -1),
                "valid": k < (L - 1)[:, None],
                "event": events(P, L, k), "dt": d[..., 0], "scale": scale, "step_px": d[..., 1:],
                "y": step / scale[..., None]}  # screen frame: the mixture rotates its target-frame components


def events(P: torch.Tensor, L: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Event label (B, S) of each step of padded paths P (B, S+1, 3): the last step is the press; the one
    before it an arrival when it ends on the target (the press does not move), else a move."""
    rows = torch.arange(len(L))
    still_press = (P[rows, L - 1, 1:] == P[rows, (L - 2).clamp_min(0), 1:]).all(-1)  # (B,)
    arrival = (k == (L - 3)[:, None]) & still_press[:, None]
    return torch.where(k == (L - 2)[:, None], PRESS, torch.where(arrival, ARRIVE, MOVE))


class ARMDNTraining(FamilyTraining):
    objectives: dict[str, tuple[str, ...]] = {}

    def __init__(self, model: ARMDNModel, cfg: ARMDNTrain, data, ctx):
        super().__init__(model, cfg, data, ctx)
        if not data.normalization:
            raise ValueError("the ar_mdn family learns pixel movements: it needs a mouse-movement data directory "
                             "(its scaling recovers the paths), not benchmark windows")
        params = NormalizationParams.from_dict(data.normalization)
        self.train_set = Movements.of(data.train, params)
        self.val_set = Movements.of(data.val, params) if data.val is not None else self.train_set
        ends = self.train_set.ends()
        model.set_data(params, torch.atan2(ends[:, 1], ends[:, 0]).numpy(), ends.norm(dim=-1).numpy(),
                       self.train_set.plan.numpy(), self.train_set.longest_step(), seed=cfg.seed)
        # the step model's weights: the critic has its own phase and optimiser
        self.fit_params = [p for name, p in model.named_parameters() if not name.startswith("critic.")]
        self.opt = torch.optim.Adam(self.fit_params, lr=cfg.lr)
        self.sched = build_scheduler(cfg.lr_schedule, self.opt, cfg.ar_iterations)
        self.pos = {"epoch": 0, "batch_pos": 0, "steps": 0}
        self._batches = None
        self.critic = CriticPhase(model, cfg, self.train_set, self.val_set) if model.cfg.critic else None
        if cfg.adv_iterations and self.critic is None:
            raise ConfigError(f"adv_iterations ({cfg.adv_iterations}) > 0 needs critic=true: the phase adversarial "
                              "learns from the critic's verdict")
        self.adversarial = (AdversarialPhase(model, cfg, self.train_set, self.fit_params)
                            if cfg.adv_iterations else None)

    # ----- state -------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict() if self.sched else None,
                 **self.pos}
        if self.critic is not None:
            state["critic"] = self.critic.state_dict()
        if self.adversarial is not None:
            state["adversarial"] = self.adversarial.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None and state.get("scheduler") is not None:
            self.sched.load_state_dict(state["scheduler"])
        self.pos = {k: int(state[k]) for k in ("epoch", "batch_pos", "steps")}
        self._batches = None
        if self.critic is not None and "critic" in state:
            self.critic.load_state_dict(state["critic"])
        if self.adversarial is not None and "adversarial" in state:
            self.adversarial.load_state_dict(state["adversarial"])

    def phases(self) -> list[Phase]:
        fit = Phase("fit", self.cfg.ar_iterations, self.step, self.evaluate, self._line, tracked="val_nll",
                    parts=PARTS, preview=self._preview,
                    on_evaluate=lambda ev: step_scheduler(self.sched, ev["val_nll"]))
        if self.critic is None:
            return [fit]
        c = self.critic
        phases = [fit, Phase("critic", self.cfg.critic_iterations, c.step, c.evaluate, c.line,
                             tracked="val_critic_loss", parts=("critic", "critic_trained"), finish=c.finish,
                             eval_every=max(1, self.cfg.critic_iterations // 3))]
        if (a := self.adversarial) is not None:  # it retrains the fitted weights (and the critic's, if it learns)
            phases.append(Phase("adversarial", self.cfg.adv_iterations, a.step, self.evaluate, a.line,
                                tracked="val_nll", parts=PARTS + ("critic",), start=a.start,
                                eval_every=max(1, self.cfg.adv_iterations // 4)))
        return phases

    # ----- training ----------------------------------------------------------
    def _epochs(self):
        """Length-aware batches, epoch after epoch, from (epoch, batch_pos); rank r takes every world_size-th."""
        cfg, ctx, L = self.cfg, self.ctx, self.train_set.L.numpy()
        sampler = LengthAwareBatchSampler(L, cfg.batch_size, seed=cfg.seed, drop_last=len(L) >= cfg.batch_size)
        while True:
            sampler.set_epoch(self.pos["epoch"])
            batches = list(sampler)
            usable = max(len(batches) - len(batches) % ctx.world_size, ctx.world_size)
            for pos in range(self.pos["batch_pos"], usable, ctx.world_size):
                self.pos["batch_pos"] = pos + ctx.world_size
                yield batches[(pos + ctx.rank) % len(batches)]
            self.pos["epoch"] += 1
            self.pos["batch_pos"] = 0

    def _noise(self, idx: list[int]) -> torch.Tensor | None:
        """Dequantisation noise U(-½, ½) px (B, S, 2) from a generator seeded by the step counter and rank."""
        if not self.cfg.dequantize:
            return None
        seed = (self.cfg.seed * 1_000_003 + self.pos["steps"]) * self.ctx.world_size + self.ctx.rank
        return dequantization_noise(self.train_set.L[idx], torch.Generator().manual_seed(seed))

    def step(self) -> dict[str, float]:
        if self._batches is None:
            self._batches = self._epochs()
        idx = next(self._batches)
        batch = self.train_set.batch(self.model, torch.as_tensor(idx), self._noise(idx))
        self.pos["steps"] += 1
        self.model.train()
        losses = self.model.losses(batch)
        guard_finite(losses)
        self.opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        params = self.fit_params
        self.ctx.sync_grads(params)
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        self.opt.step()
        step_scheduler(self.sched)
        return {k: float(v.detach()) for k, v in losses.items()}

    # ----- validation --------------------------------------------------------
    @torch.no_grad()
    def validation_nll(self) -> dict[str, float]:
        """Per-step NLL parts over the first eval_nll_movements validation movements (fixed dequantisation noise)."""
        self.model.eval()
        vs = self.val_set
        n = min(len(vs.L), self.cfg.eval_nll_movements)
        order = torch.argsort(vs.L[:n], stable=True)
        gen = torch.Generator().manual_seed(self.cfg.seed + VAL_SEED)
        sums, steps = {}, 0.0
        for s in range(0, n, NLL_CHUNK):
            idx = order[s : s + NLL_CHUNK]
            noise = dequantization_noise(vs.L[idx], gen)  # drawn even when unused: the same noise either way
            out = self.model.losses(vs.batch(self.model, idx, noise if self.cfg.dequantize else None))
            w = float((vs.L[idx] - 1).sum())  # valid steps in the chunk
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v) * w
            steps += w
        return {f"val_nll_{k}" if k != "total" else "val_nll": v / steps for k, v in sums.items()}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        ev = self.validation_nll()
        vs, n = self.val_set, min(len(self.val_set.L), self.cfg.eval_samples)
        gen = torch.Generator().manual_seed(self.cfg.seed + VAL_SEED)
        P, L, info = self.model.sample_paths(n, vs.C[:n].reshape(-1, 1), rng=gen)
        rows = np.arange(n)
        dur_f = np.sort(P[rows, L - 1, 0])
        dur_r = np.sort(vs.P[rows, vs.L[:n] - 1, 0].numpy())
        end = np.hypot(*P[rows, L - 1, 1:].T)
        ev.update(val_duration_w1_ms=float(np.abs(dur_f - dur_r).mean()),  # W1 of equal-size samples
                  val_end_rel_err=float(np.median(np.abs(end - info["distance"]) / info["distance"])),
                  val_snap_over_1px=float((info["snap_px"] > 1).mean()),
                  val_arrive_px_median=float(np.median(info["arrive_px"][info["arrive_px"] > 0]))
                  if (info["arrive_px"] > 0).any() else 0.0,
                  val_max_len_rate=float(info["forced"].mean()),
                  val_length_mean=float(L.mean()), val_length_mean_real=float(vs.L[:n].double().mean()))
        return ev

    def _preview(self, n: int) -> tuple:
        """Validation movements and generated ones for their distances, as features (TensorBoard)."""
        ds = self.data.val or self.data.train
        x, c, L = ds.batch(torch.arange(min(n, len(ds))), trim=False)
        X, L_gen = self.model.generate(len(c), c, rng=torch.Generator().manual_seed(self.cfg.seed + VAL_SEED))
        return x, X, c, L, L_gen, "generated"

    def _line(self, it: int, mean: dict, its: float) -> str:
        return (f"[fit] Iter {it:6d}/{self.cfg.ar_iterations} | NLL {mean['total']:.4f} | event {mean['event']:.4f} | "
                f"dt {mean['dt']:.4f} | step {mean['step']:.4f} | {its:.1f} it/s")
