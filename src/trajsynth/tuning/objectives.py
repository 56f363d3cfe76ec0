"""Optuna objectives of the two stages: one trial = one short training run, scored on validation data.

Each trial trains in its own folder ``<out>/checkpoints/optuna/stage{1,2}_trial_{n}/`` (config.yaml,
metrics.jsonl, trial.json and ``best_model.pt``). The trainer's evaluation hook keeps the weights of
the best evaluation so far (stage 1: validation reconstruction through the summary; stage 2:
summary MMD), reports that value to Optuna in ``single`` mode (where the pruner may stop the
trial), and stops a stage-2 trial whose generator has collapsed. ``best_model.pt`` holds the best
weights with the trainer state of the trial's end.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch

from ..config import replace
from ..models.latent_wgan.config import ARCH_FIELDS, LatentWGANConfig, get_config
from ..training.two_stage import TrainData, TwoStageTrainer, load_stage1_checkpoint, stage2_trainer
from ..utils.atomic import write_json
from .config import OptunaConfig
from .scores import stage1_scores, stage2_disc
from .space import ParamSpec, decode, load_space
from .storage import redact

log = logging.getLogger("trajsynth.tuning")
TRACKED = {1: "val_recon", 2: "val_mmd_summary"}  # lower is better


class BestTracker:
    """Evaluation hook of one trial: keep the best weights, report, prune."""

    def __init__(self, trial, stage: int, total: int, settings: OptunaConfig):
        self.trial, self.stage, self.total, self.settings = trial, stage, total, settings
        self.best: float = float("inf")
        self.best_ev: dict = {}
        self.state: dict | None = None
        self.model = None
        self._reported: set[int] = set()

    def __call__(self, stage: int, it: int, ev: dict) -> None:
        import optuna

        if stage != self.stage:
            return
        value = ev[TRACKED[stage]]
        if value < self.best:
            self.best, self.best_ev = value, dict(ev, iteration=it)
            self.state = copy.deepcopy(self.model.state_dict())
        if self.settings.mode == "single" and it not in self._reported:
            self._reported.add(it)
            self.trial.report(value, it)
            if self.trial.should_prune():
                self.trial.set_user_attr("pruned_reason", f"pruner at iteration {it} ({TRACKED[stage]} {value:.5g})")
                raise optuna.TrialPruned()
        s = self.settings
        collapsed = ev.get("val_coverage", 1.0) < s.collapse_coverage
        if stage == 2 and it >= s.guard_from * self.total and collapsed:
            self.trial.set_user_attr("pruned_reason", f"collapse guard at iteration {it} (coverage "
                                     f"{ev['val_coverage']:.3f} < {s.collapse_coverage})")
            self.trial.set_constraint("coverage", s.min_coverage - ev["val_coverage"])
            raise optuna.TrialPruned()

    def restore(self) -> None:
        if self.state is not None:
            self.model.load_state_dict(self.state)


def preset_config(settings: OptunaConfig, data: TrainData) -> LatentWGANConfig:
    """The preset with the data's sequence length and the overrides fixed for every trial."""
    return replace(get_config(settings.preset, max_seq_len=data.train.max_len), settings.overrides)


class TrialObjective:
    """One trial = one training run of a stage; subclasses say which stage, how to train and score."""

    stage: int

    def __init__(self, settings: OptunaConfig, data: TrainData, base: LatentWGANConfig | None = None):
        self.settings, self.data = settings, data
        self.base = base or preset_config(settings, data)
        fixed = set(settings.overrides)
        self.space: dict[str, ParamSpec] = {k: v for k, v in load_space(self.stage, settings.space_file).items()
                                            if k not in fixed}  # --set fixes a parameter for every trial

    def trial_config(self, params: dict[str, Any]) -> LatentWGANConfig:
        cfg = replace(self.base, decode(params))
        # Trials keep only best_model.pt: no periodic checkpoints.
        return replace(cfg, {"save_interval": max(cfg.stage1_iterations, cfg.stage2_iterations) + 1})

    def trial_dir(self, trial, study_name: str) -> Path:
        path = self.settings.checkpoint_root / f"stage{self.stage}_trial_{trial.number}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()  # FileExistsError: never write into another trial's (or study's) folder
        write_json(path / "trial.json", {"study": study_name, "trial": trial.number, "stage": self.stage,
                                         "storage": redact(self.settings.storage_url)})
        trial.set_user_attr("run_dir", str(path.resolve()))
        return path

    def __call__(self, trial) -> float | tuple[float, float]:
        params = {name: spec.suggest(trial, name) for name, spec in self.space.items()}
        cfg = self.trial_config(params)
        run_dir = self.trial_dir(trial, trial.study.study_name)
        log.info("trial %d (stage %d) starts: %s", trial.number, self.stage, params)
        trainer = self.make_trainer(cfg, run_dir)
        tracker = BestTracker(trial, self.stage, self.total(cfg), self.settings)
        tracker.model, trainer.eval_hook = trainer.model, tracker
        try:
            self.train(trainer)
        except BaseException:
            if tracker.state is not None:  # a pruned (or stopped) trial keeps its best weights too
                tracker.restore()
                self._save_best(trainer, trial)
            raise
        tracker.restore()
        values = self.score(trainer, trial, tracker.best_ev)
        self._save_best(trainer, trial)
        log.info("trial %d (stage %d) done: %s", trial.number, self.stage, values)
        return values

    def _save_best(self, trainer: TwoStageTrainer, trial) -> None:
        path = trainer.save("best_model.pt")
        for stale in trainer.run_dir.glob("stage*_final.pt"):
            stale.unlink()
        trial.set_user_attr("checkpoint", str(path.resolve()))

    def _values(self, trial, scores: dict[str, float], objectives: tuple[str, str]):
        for k, v in scores.items():
            trial.set_user_attr(k, v)
        if self.settings.mode == "single":
            return scores[objectives[0]]
        return tuple(scores[k] for k in objectives)


class Stage1Objective(TrialObjective):
    """Stage 1: minimise (recon_mse, latent_rel_err); ``single`` mode: recon_mse alone."""

    stage = 1
    objectives = ("recon_mse", "latent_rel_err")

    def total(self, cfg: LatentWGANConfig) -> int:
        return cfg.stage1_iterations

    def make_trainer(self, cfg: LatentWGANConfig, run_dir: Path) -> TwoStageTrainer:
        return TwoStageTrainer(cfg, self.data, run_dir, tensorboard=self.settings.tensorboard, progress=False,
                                log_lines=False)

    def train(self, trainer: TwoStageTrainer) -> None:
        trainer.train_stage1()

    def score(self, trainer: TwoStageTrainer, trial, best_ev: dict):
        scores = stage1_scores(trainer.model, self.data.val or self.data.train)
        scores["best_iteration"] = best_ev.get("iteration", trainer.state["iteration"])
        return self._values(trial, scores, self.objectives)


class Stage2Objective(TrialObjective):
    """Stage 2 on a frozen stage-1 autoencoder: minimise (mmd, disc); ``single`` mode: mmd alone."""

    stage = 2
    objectives = ("mmd", "disc")

    def __init__(self, settings: OptunaConfig, data: TrainData, stage1_checkpoint: str | Path):
        self.checkpoint = load_stage1(stage1_checkpoint, data)
        self.checkpoint_path = str(Path(stage1_checkpoint).resolve())
        stored = self.checkpoint["config"]
        super().__init__(settings, data, replace(preset_config(settings, data), {k: stored[k] for k in ARCH_FIELDS}))
        self._summaries: tuple[torch.Tensor, torch.Tensor] | None = None  # frozen encoder: encode once

    def total(self, cfg: LatentWGANConfig) -> int:
        return cfg.stage2_iterations

    def make_trainer(self, cfg: LatentWGANConfig, run_dir: Path) -> TwoStageTrainer:
        tr = stage2_trainer(self.checkpoint, cfg, self.data, run_dir, tensorboard=self.settings.tensorboard,
                            progress=False, log_lines=False)
        if self._summaries is None:
            self._summaries = tr.real_summaries()
        tr.share_summaries(self._summaries)
        return tr

    def train(self, trainer: TwoStageTrainer) -> None:
        trainer.train_stage2()

    def score(self, trainer: TwoStageTrainer, trial, best_ev: dict):
        s = self.settings
        disc = stage2_disc(trainer.model, self.data.val or self.data.train, s.eval_samples, s.disc_iterations,
                           seed=trainer.cfg.seed)
        scores = {"mmd": best_ev["val_mmd_summary"], "disc": disc, "coverage": best_ev["val_coverage"],
                  "density": best_ev["val_density"], "condition_mae": best_ev["val_condition_mae"],
                  "best_iteration": best_ev["iteration"]}
        # Coverage is a constraint (≤ 0: feasible): the sampler and the Pareto front prefer feasible trials.
        trial.set_constraint("coverage", s.min_coverage - best_ev["val_coverage"])
        return self._values(trial, scores, self.objectives)


def load_stage1(path: str | Path, data: TrainData) -> dict:
    """A finished stage-1 checkpoint that fits ``data``; clear errors otherwise."""
    ckpt = load_stage1_checkpoint(path)
    if ckpt["config"]["max_seq_len"] != data.train.max_len:
        raise ValueError(f"{path} was trained on sequences of up to {ckpt['config']['max_seq_len']} steps, "
                         f"the data has {data.train.max_len}")
    stored = ckpt.get("data", {})
    if stored.get("normalization") != data.normalization:  # other data: its summaries would mean something else
        raise ValueError(f"{path} was trained on data scaled otherwise ({stored.get('data_dir')}) than "
                         f"{data.data_dir}; pass that directory as --data-dir")
    return ckpt
