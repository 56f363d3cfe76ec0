"""Trainer of the two-stage latent WGAN-GP: stage 1 autoencoder, stage 2 WGAN-GP on summaries.

Every random draw of training comes from state that is saved in checkpoints
(the per-epoch batch order of stage 1 is a function of (seed, epoch); stage 2
draws from one ``torch.Generator``), so a run resumed from any checkpoint ends
with the same weights as the same run left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..blocks.masks import length_mask
from ..config import dump_yaml, from_dict, to_dict
from ..data.loading import LengthAwareBatchSampler, TrajectoryDataset
from ..losses.reconstruction import masked_mse
from ..metrics.distribution import coverage_density, mmd_rbf
from ..models.latent_wgan.config import ARCH_FIELDS, LatentWGANConfig
from ..models.latent_wgan.model import AUTOENCODER_PARTS, LatentWGAN
from ..utils.atomic import write_text
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .runs import MetricsLog
from .schedules import build_scheduler, step_scheduler
from .tensorboard import TensorBoardLog

MODEL_FAMILY = "latent_wgan"


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""


@dataclass
class TrainData:
    train: TrajectoryDataset
    val: TrajectoryDataset | None
    normalization: dict
    data_dir: str


class TwoStageTrainer:
    def __init__(self, cfg: LatentWGANConfig, data: TrainData, run_dir: str | Path,
                 tensorboard: bool = True, progress: bool = True, log_lines: bool = True):
        if data.train.max_len != cfg.max_seq_len:
            raise ValueError(f"data has max_seq_len {data.train.max_len} but the config says {cfg.max_seq_len}")
        self.cfg, self.data, self.run_dir, self.progress = cfg, data, Path(run_dir), progress
        self.log_lines = log_lines  # the [Stage N] lines on stdout (metrics.jsonl is always written)
        torch.manual_seed(cfg.seed)
        self.model = LatentWGAN(cfg)
        adam = dict(fused=True)  # one kernel per step instead of one per tensor: small nets are overhead-bound
        self.opt_ae = torch.optim.Adam(self.model.autoencoder_parameters(), lr=cfg.lr_autoencoder, **adam)
        self.opt_g = torch.optim.Adam(self.model.generator.parameters(), lr=cfg.lr_generator, betas=(0.0, 0.9),
                                      **adam)
        self.opt_d = torch.optim.Adam(self.model.critic.parameters(), lr=cfg.lr_discriminator, betas=(0.0, 0.9),
                                      **adam)
        self.sched_ae = build_scheduler(cfg.lr_schedule, self.opt_ae, cfg.stage1_iterations)
        self.sched_g = build_scheduler(cfg.lr_schedule, self.opt_g, cfg.stage2_iterations)
        self.sched_d = build_scheduler(cfg.lr_schedule, self.opt_d, cfg.stage2_iterations)
        self.rng = torch.Generator().manual_seed(cfg.seed + 1)  # all stage-2 randomness
        self.state = {"stage": 1, "iteration": 0, "epoch": 0, "batch_pos": 0, "stage1_done": False,
                      "stage2_done": False, "stage1_converged_at": None, "window": []}
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
        self.tb = TensorBoardLog(self.run_dir / "logs", enabled=tensorboard)
        self._z_cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self._val_z_cache: torch.Tensor | None = None
        self.last_checkpoint: Path | None = None
        # Called as eval_hook(stage, iteration, eval_dict) after every evaluation (periodic and final);
        # hyperparameter search uses it to report intermediate values, prune, and keep the best weights.
        self.eval_hook: Callable[[int, int, dict], None] | None = None
        write_text(self.run_dir / "config.yaml", dump_yaml(cfg))

    # ----- checkpoints ------------------------------------------------------
    def checkpoint_payload(self) -> dict:
        scheds = {k: s.state_dict() for k, s in
                  (("ae", self.sched_ae), ("g", self.sched_g), ("d", self.sched_d)) if s is not None}
        return {
            "model_family": MODEL_FAMILY, "arch_version": self.cfg.arch_version, "config": to_dict(self.cfg),
            "model_state": self.model.state_dict(), "trainer_state": dict(self.state),
            "optimizers": {"ae": self.opt_ae.state_dict(), "g": self.opt_g.state_dict(),
                           "d": self.opt_d.state_dict()},
            "schedulers": scheds, "rng": {"stage2": self.rng.get_state(), "torch": torch.get_rng_state()},
            "data": self._data_summary(),
        }

    def _data_summary(self) -> dict:
        c = self.data.train.C.reshape(-1).numpy()
        return {"normalization": self.data.normalization, "data_dir": self.data.data_dir,
                "max_seq_len": self.cfg.max_seq_len,
                "condition_quantiles": np.quantile(c, np.linspace(0, 1, 101)).tolist()}

    def save(self, name: str) -> Path:
        self.last_checkpoint = save_checkpoint(self.run_dir / name, self.checkpoint_payload())
        return self.last_checkpoint

    def load_state(self, ckpt: dict) -> None:
        """Restore weights, optimisers, schedulers, RNG and progress from a checkpoint dict."""
        self.model.load_state_dict(ckpt["model_state"])
        self.state.update(ckpt["trainer_state"])
        self.state["window"] = [dict(w) for w in self.state.get("window", [])]
        for key, opt in (("ae", self.opt_ae), ("g", self.opt_g), ("d", self.opt_d)):
            opt.load_state_dict(ckpt["optimizers"][key])
        for key, s in (("ae", self.sched_ae), ("g", self.sched_g), ("d", self.sched_d)):
            if s is not None and key in ckpt["schedulers"]:
                s.load_state_dict(ckpt["schedulers"][key])
        self.rng.set_state(ckpt["rng"]["stage2"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if self.state["stage1_done"]:
            self.model.freeze_autoencoder()

    @classmethod
    def from_checkpoint(cls, path: str | Path, data: TrainData, run_dir: str | Path, **kw) -> TwoStageTrainer:
        ckpt = load_checkpoint(path)
        check_family(ckpt, path)
        trainer = cls(from_dict(LatentWGANConfig, ckpt["config"]), data, run_dir, **kw)
        trainer.load_state(ckpt)
        trainer.metrics.write({"event": "resumed", "from": str(path), **ckpt["trainer_state"]})
        return trainer

    # ----- helpers ----------------------------------------------------------
    def _check_finite(self, stage: int, it: int, losses: dict) -> None:
        if all(torch.isfinite(v).all() for v in losses.values()):
            return
        shown = {k: float(v) for k, v in losses.items()}
        where = self.last_checkpoint or "none saved yet"
        raise TrainingDiverged(f"[Stage {stage}] non-finite loss at iteration {it}: {shown}. "
                               f"Training stopped; last good checkpoint: {where}. Try a lower learning rate "
                               "or a smaller grad_clip.")

    def _clip(self, params) -> None:
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)

    def _say(self, bar, line: str) -> None:
        if self.log_lines:
            bar.write(line)

    def _bar(self, stage: int, total: int, start: int):
        # disable=None: the bar shows on a terminal only; logs keep just the [Stage N] lines.
        return tqdm(total=total, initial=start, desc=f"stage {stage}", unit="it",
                    disable=None if self.progress else True, dynamic_ncols=True, leave=False)

    # ----- stage 1 ----------------------------------------------------------
    def _stage1_batches(self):
        """Length-aware batches, epoch after epoch, resuming at (epoch, batch_pos)."""
        sampler = LengthAwareBatchSampler(self.data.train.L.numpy(), self.cfg.batch_size,
                                          seed=self.cfg.seed, drop_last=len(self.data.train) >= self.cfg.batch_size)
        while True:
            sampler.set_epoch(self.state["epoch"])
            batches = list(sampler)
            for pos in range(self.state["batch_pos"], len(batches)):
                self.state["batch_pos"] = pos + 1
                yield batches[pos]
            self.state["epoch"] += 1
            self.state["batch_pos"] = 0

    def stage1_step(self, idx) -> dict:
        x, c, L = self.data.train.batch(idx)  # (B, T', F), (B, 1), (B,)
        self.model.train()
        _, losses = self.model.forward_autoencoder(x, L, c)
        self._check_finite(1, self.state["iteration"] + 1, losses)
        self.opt_ae.zero_grad(set_to_none=True)
        losses["total"].backward()
        self._clip(self.model.autoencoder_parameters())
        self.opt_ae.step()
        step_scheduler(self.sched_ae)
        return {k: float(v.detach()) for k, v in losses.items()}

    @torch.no_grad()
    def evaluate_stage1(self, max_n: int = 1024) -> dict:
        ds = self.data.val or self.data.train
        idx = torch.arange(min(len(ds), max_n))
        self.model.eval()
        x, c, L = ds.batch(idx)
        _, losses = self.model.forward_autoencoder(x, L, c)
        return {f"val_{k}": float(v) for k, v in losses.items()}

    def _loop(self, stage: int, total: int, step, log, evaluate, converged=None) -> None:
        """Shared iteration loop: step, windowed logging, evaluation, periodic checkpoints.

        ``converged(mean)`` may end the loop early at a logging step. The logging
        window lives in the saved state, so a resumed run averages (and decides
        convergence on) exactly the same numbers as an uninterrupted one.
        """
        cfg, st = self.cfg, self.state
        window, t0 = st["window"], time.perf_counter()
        bar = self._bar(stage, total, st["iteration"])
        while st["iteration"] < total:
            window.append(step())
            st["iteration"] += 1
            bar.update(1)
            it = st["iteration"]
            if it % cfg.log_interval == 0 or it == total:
                mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
                log(it, mean, len(window) / (time.perf_counter() - t0), bar)
                window.clear()
                t0 = time.perf_counter()
                if converged is not None and converged(it, mean, bar):
                    break
            if it % cfg.eval_interval == 0 and it < total:
                evaluate(it)
            if it % cfg.save_interval == 0 and it < total:
                self.save(f"stage{stage}_iter{it}.pt")
        bar.close()

    def train_stage1(self) -> dict:
        if self.state["stage1_done"]:
            return {}
        batches = self._stage1_batches()
        self._loop(1, self.cfg.stage1_iterations, lambda: self.stage1_step(next(batches)), self._log_stage1,
                   self._eval_stage1, self._stage1_converged)
        return self._finish_stage1()

    def _stage1_converged(self, it: int, mean: dict, bar) -> bool:
        cfg = self.cfg
        if it < cfg.stage1_min_iterations or mean["direct"] >= cfg.stage1_threshold:
            return False
        self.state["stage1_converged_at"] = it
        self._say(bar, f"Stage 1 converged at iteration {it} (direct {mean['direct']:.4f} < threshold "
                  f"{cfg.stage1_threshold})")
        return True

    def _log_stage1(self, it: int, mean: dict, its: float, bar) -> None:
        self._say(bar, f"[Stage 1] Iter {it:6d}/{self.cfg.stage1_iterations} | Direct {mean['direct']:.4f} | "
                  f"Recon {mean['recon']:.4f} | Latent {mean['latent']:.4f} | Len {mean['length']:.3f} | "
                  f"{its:.1f} it/s")
        self.metrics.write({"stage": 1, "iteration": it, "it_s": its, **mean})
        self.tb.scalars("stage1", {f"loss_{k}": v for k, v in mean.items()}, it)

    def _eval_stage1(self, it: int) -> dict:
        ev = self.evaluate_stage1()
        self.metrics.write({"stage": 1, "iteration": it, **ev})
        self.tb.scalars("stage1_eval", ev, it)
        if self.tb.writer:
            self._tb_trajectories("stage1/trajectories", it, generated=False)
        step_scheduler(self.sched_ae, ev["val_recon"])
        if self.eval_hook is not None:
            self.eval_hook(1, it, ev)
        return ev

    @torch.no_grad()
    def _tb_trajectories(self, tag: str, it: int, generated: bool, n: int = 12) -> None:
        """Real vs reconstructed (stage 1) or generated (stage 2) pixel paths, as a TensorBoard image."""
        from ..data.features import NormalizationParams, features_to_paths
        from ..figures.quicklook import paths_figure

        ds, params = self.data.val or self.data.train, NormalizationParams.from_dict(self.data.normalization)
        x, c, L = ds.batch(torch.arange(min(n, len(ds))))
        self.model.eval()
        if generated:
            gen = torch.Generator().manual_seed(self.cfg.seed + 7)
            x_other, L_other = self.model.generate(len(c), c, rng=gen)
        else:
            x_other, L_other = self.model.forward_autoencoder(x, L, c)[0], L
        real = features_to_paths(x.numpy(), c.numpy(), L.numpy(), params)
        other = features_to_paths(x_other.numpy(), c.numpy(), L_other.numpy(), params)
        name = "generated" if generated else "reconstructed"
        self.tb.figure(tag, paths_figure(real, other, n, f"iteration {it}", fake_name=name), it)

    def _finish_stage1(self) -> dict:
        ev = self._eval_stage1(self.state["iteration"])
        if self.tb.writer:  # summaries in the projector, labelled by condition
            ds = self.data.val or self.data.train
            k = min(len(ds), 2000)
            self.tb.embedding(self.summaries(ds)[:k], ds.C[:k, 0].numpy(), "summaries", self.state["iteration"])
        self.state.update(stage1_done=True, stage=2, iteration=0, window=[])
        self.model.freeze_autoencoder()
        self.save("stage1_final.pt")
        return ev

    # ----- stage 2 ----------------------------------------------------------
    def summaries(self, ds: TrajectoryDataset) -> torch.Tensor:
        """Frozen encoder's summaries of a whole dataset (N, S)."""
        self.model.eval()
        return self.model.encode_all(ds.X, ds.L)

    def real_summaries(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached once: the encoder is frozen, so real summaries never change in stage 2."""
        if self._z_cache is None:
            self._z_cache = (self.summaries(self.data.train), self.data.train.C)
        return self._z_cache

    def share_summaries(self, cache: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Use (summaries, conditions) of the training set encoded by the same frozen autoencoder
        elsewhere, e.g. by an earlier hyperparameter-search trial, instead of encoding them again."""
        if len(cache[0]) != len(self.data.train) or cache[0].size(1) != self.cfg.summary_dim:
            raise ValueError(f"summary cache of shape {tuple(cache[0].shape)} does not fit this trainer's data")
        self._z_cache = cache

    def _sample_idx(self) -> torch.Tensor:
        n = len(self.data.train)
        return torch.randint(n, (self.cfg.batch_size,), generator=self.rng)

    def stage2_step(self) -> dict:
        z_all, c_all = self.real_summaries()
        self.model.critic.train(), self.model.generator.train()
        for _ in range(self.cfg.n_critic):
            idx = self._sample_idx()
            d = self.model.forward_discriminator(z_all[idx], c_all[idx], rng=self.rng)
            self._check_finite(2, self.state["iteration"] + 1, d)
            self.opt_d.zero_grad(set_to_none=True)
            d["total"].backward()
            self.opt_d.step()
        idx = self._sample_idx()
        g = self.model.forward_generator(c_all[idx], z_all[idx], rng=self.rng)
        self._check_finite(2, self.state["iteration"] + 1, g)
        self.opt_g.zero_grad(set_to_none=True)
        g["total"].backward()
        self._clip(self.model.generator.parameters())
        self.opt_g.step()
        step_scheduler(self.sched_d), step_scheduler(self.sched_g)
        out = {"D": float(d["total"].detach()), "W": float(d["wasserstein"]), "GP": float(d["gp"]),
               "G": float(g["adv"].detach())}
        out.update({k: float(v.detach()) for k, v in g.items() if k in ("fm", "cond_guard")})
        return out

    @torch.no_grad()
    def evaluate_stage2(self, max_n: int = 1024) -> dict:
        ds = self.data.val or self.data.train
        n = min(len(ds), max_n)
        self.model.eval()
        if self._val_z_cache is None or len(self._val_z_cache) != n:  # frozen encoder: encode once
            self._val_z_cache = self.model.encode_all(ds.X[:n], ds.L[:n])
        z_real, c = self._val_z_cache, ds.C[:n]
        gen = torch.Generator().manual_seed(self.cfg.seed + 12345)  # eval draws never touch training RNG
        z_fake = self.model.generator(torch.randn(n, self.cfg.noise_dim, generator=gen), c)
        cond_err = float((self.model.condition_head(z_fake) - c).abs().mean())
        # The evaluation suite's own latent metrics (pure functions), cheap on 1024 summaries.
        cd = coverage_density(z_real.numpy(), z_fake.numpy())
        return {"val_mmd_summary": mmd_rbf(z_real.numpy(), z_fake.numpy(), seed=self.cfg.seed),
                "val_coverage": cd["coverage"], "val_density": cd["density"], "val_condition_mae": cond_err}

    def train_stage2(self) -> dict:
        st = self.state
        if not st["stage1_done"]:
            raise RuntimeError("stage 2 needs a trained stage 1 (train stage 1 or load its checkpoint first)")
        if st["stage2_done"]:
            return {}
        self.model.freeze_autoencoder()
        self._loop(2, self.cfg.stage2_iterations, self.stage2_step, self._log_stage2, self._eval_stage2)
        ev = self._eval_stage2(st["iteration"])
        st["stage2_done"] = True
        self.save("stage2_final.pt")
        return ev

    def _log_stage2(self, it: int, mean: dict, its: float, bar) -> None:
        self._say(bar, f"[Stage 2] Iter {it:6d}/{self.cfg.stage2_iterations} | D {mean['D']:.4f} | G {mean['G']:.4f} | "
                  f"W {mean['W']:.4f} | {its:.1f} it/s")
        self.metrics.write({"stage": 2, "iteration": it, "it_s": its, **mean})
        self.tb.scalars("stage2", mean, it)

    def _eval_stage2(self, it: int) -> dict:
        ev = self.evaluate_stage2()
        self.metrics.write({"stage": 2, "iteration": it, **ev})
        self.tb.scalars("stage2_eval", ev, it)
        if self.tb.writer:
            self._tb_trajectories("stage2/generated_trajectories", it, generated=True)
        step_scheduler(self.sched_g, ev["val_mmd_summary"]), step_scheduler(self.sched_d, ev["val_mmd_summary"])
        if self.eval_hook is not None:
            self.eval_hook(2, it, ev)
        return ev

    # ----- both -------------------------------------------------------------
    def train(self) -> Path:
        """Stage 1 (unless done), stage 2, then ``final.pt``; returns its path."""
        self.train_stage1()
        self.train_stage2()
        path = self.save("final.pt")
        self.tb.close()
        return path


def check_family(ckpt: dict, path: str | Path) -> None:
    if ckpt.get("model_family") != MODEL_FAMILY:
        raise CheckpointError(f"{path} holds a {ckpt.get('model_family')!r} model, not {MODEL_FAMILY!r}")


def require_stage1_done(ckpt: dict, path: str | Path) -> None:
    if not ckpt.get("trainer_state", {}).get("stage1_done"):
        raise CheckpointError(f"{path} is not a finished stage-1 checkpoint (use a run's stage1_final.pt or a "
                              f"tuning trial's best_model.pt)")


def load_stage1_checkpoint(path: str | Path) -> dict:
    """A finished stage-1 checkpoint of this model family, or one clear error."""
    ckpt = load_checkpoint(path)
    check_family(ckpt, path)
    require_stage1_done(ckpt, path)
    return ckpt


def stage2_trainer(stage1: dict, cfg: LatentWGANConfig, data: TrainData, run_dir: str | Path,
                   **kw) -> TwoStageTrainer:
    """A trainer at the start of stage 2 on the frozen autoencoder of a finished stage-1 checkpoint dict.

    ``cfg`` must carry the checkpoint's architecture fields (see ``ARCH_FIELDS``).
    """
    require_stage1_done(stage1, "the stage-1 checkpoint")
    stored = from_dict(LatentWGANConfig, stage1["config"])
    differ = [k for k in ARCH_FIELDS if getattr(stored, k) != getattr(cfg, k)]
    if differ:
        raise ValueError(f"config differs from the stage-1 checkpoint in architecture field(s) {differ}")
    tr = TwoStageTrainer(cfg, data, run_dir, **kw)
    # Only the autoencoder's weights: the generator and critic may be shaped differently in this config.
    own = {k: v for k, v in stage1["model_state"].items() if k.split(".", 1)[0] in AUTOENCODER_PARTS}
    missing = [k for k in tr.model.state_dict() if k.split(".", 1)[0] in AUTOENCODER_PARTS and k not in own]
    if missing:
        raise ValueError(f"the stage-1 checkpoint lacks autoencoder weights {missing[:4]}")
    tr.model.load_state_dict(own, strict=False)
    tr.state.update(stage1_done=True, stage=2, iteration=0, window=[])
    tr.model.freeze_autoencoder()
    return tr


def stage1_direct_mse(model: LatentWGAN, ds: TrajectoryDataset, chunk: int = 512) -> float:
    """Direct (encoder → decoder) reconstruction MSE over a whole dataset, valid steps only."""
    model.eval()
    total, count = 0.0, 0.0
    with torch.no_grad():
        for s in range(0, len(ds), chunk):
            x, _, L = ds.batch(torch.arange(s, min(s + chunk, len(ds))))
            mask = length_mask(L, x.size(1))
            n = float(mask.sum()) * x.size(-1)
            total += float(masked_mse(model.decoder(model.encoder(x)), x, mask)) * n
            count += n
    return total / max(count, 1.0)


