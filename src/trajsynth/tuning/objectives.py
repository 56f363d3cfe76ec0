"""The Optuna objective: one trial = one short training run of one phase of a family, scored on validation data.

Each trial trains in its own folder ``<out>/checkpoints/optuna/<phase>_trial_{n}/`` (config.yaml,
metrics.jsonl, trial.json and ``best_model.pt``). The trainer's evaluation hook keeps the weights of
the best evaluation so far (the phase's ``tracked`` value, e.g. stage 1's validation
reconstruction, stage 2's summary MMD), reports that value to Optuna in ``single`` mode (where the
pruner may stop the trial), and stops a trial whose generator has collapsed (validation coverage).
``best_model.pt`` holds the best weights with the trainer state of the trial's end. A phase after
the first starts from the finished phases of a checkpoint (``init``), whose frozen parts' caches
are shared between trials.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from ..data.train_data import TrainData
from ..models.checkpoint import CheckpointError, phases_done
from ..models.registry import RunConfig, get_family
from ..training.loop import Trainer
from ..training.setup import build_run_config, continuing_config, load_continuable
from ..utils.atomic import write_json
from .config import OptunaConfig
from .space import ParamSpec, decode, load_space
from .storage import redact

log = logging.getLogger("trajsynth.tuning")


class BestTracker:
    """Evaluation hook of one trial: keep the best weights, report, prune."""

    def __init__(self, trial, phase: str, tracked: str, total: int, settings: OptunaConfig):
        self.trial, self.phase, self.tracked, self.total, self.settings = trial, phase, tracked, total, settings
        self.best: float = float("inf")
        self.best_ev: dict = {}
        self.state: dict | None = None
        self.model = None
        self._reported: set[int] = set()

    def __call__(self, phase: str, it: int, ev: dict) -> None:
        import optuna

        if phase != self.phase:
            return
        value = ev[self.tracked]
        if value < self.best:
            self.best, self.best_ev = value, dict(ev, iteration=it)
            self.state = copy.deepcopy(self.model.state_dict())
        if self.settings.mode == "single" and it not in self._reported:
            self._reported.add(it)
            self.trial.report(value, it)
            if self.trial.should_prune():
                self.trial.set_user_attr("pruned_reason", f"pruner at iteration {it} ({self.tracked} {value:.5g})")
                raise optuna.TrialPruned()
        s = self.settings
        collapsed = ev.get("val_coverage", 1.0) < s.collapse_coverage
        if "val_coverage" in ev and it >= s.guard_from * self.total and collapsed:
            self.trial.set_user_attr("pruned_reason", f"collapse guard at iteration {it} (coverage "
                                     f"{ev['val_coverage']:.3f} < {s.collapse_coverage})")
            self.trial.set_constraint("coverage", s.min_coverage - ev["val_coverage"])
            raise optuna.TrialPruned()

    def restore(self) -> None:
        if self.state is not None:
            self.model.load_state_dict(self.state)


class PhaseObjective:
    """Trials of one phase of a family: train the phase with suggested settings, score it."""

    def __init__(self, settings: OptunaConfig, data: TrainData, phase: str, init: str | Path | None = None):
        fam = get_family(settings.family)
        if phase not in fam.phase_names:
            raise ValueError(f"{fam.name} has no phase {phase!r}; its phases: {', '.join(fam.phase_names)}")
        self.settings, self.data, self.phase, self.family = settings, data, phase, fam
        self.index = fam.phase_names.index(phase)
        self.checkpoint, self.checkpoint_path = None, None
        if self.index > 0:
            self._load_init(init)
        self.base = self._base_config()
        fixed = set(settings.overrides)  # --set fixes a parameter for every trial
        self.space: dict[str, ParamSpec] = {k: v for k, v in load_space(fam.name, phase, settings.space_file).items()
                                            if k not in fixed}
        self.objectives = fam.training_cls.objectives.get(phase, ())
        self._shared: Any = None  # cache of the frozen parts, computed by the first trial

    def _load_init(self, init) -> None:
        earlier = self.family.phase_names[: self.index]
        if init is None:
            raise ValueError(f"phase {self.phase} needs a checkpoint in which {', '.join(earlier)} is done (--init)")
        ckpt = load_continuable(init, self.family.name)
        missing = [p for p in earlier if p not in phases_done(ckpt)]
        if missing:
            raise CheckpointError(f"{init}: phase(s) {missing} are not finished there")
        if ckpt.get("data", {}).get("normalization") != self.data.normalization:
            raise ValueError(f"{init} was trained on data scaled otherwise ({ckpt.get('data', {}).get('data_dir')}) "
                             f"than {self.data.data_dir}; pass that directory as --data-dir")
        self.checkpoint, self.checkpoint_path = ckpt, str(Path(init).resolve())

    def _base_config(self) -> RunConfig:
        s, L = self.settings, self.data.train.max_len
        if self.checkpoint is None:
            return build_run_config(s.family, s.preset, s.overrides, L)
        return continuing_config(self.checkpoint, self.checkpoint_path, s.preset, s.overrides, L)

    @property
    def total(self) -> int:
        return self._phase_total(self.base)

    def _phase_total(self, run: RunConfig) -> int:
        return run.get(f"{self.phase}_iterations") if hasattr(run.train, f"{self.phase}_iterations") else 1

    def trial_config(self, params: dict[str, Any]) -> RunConfig:
        run = self.base.replace(decode(params))
        return run.replace({"save_interval": self._phase_total(run) + 1})  # trials keep only best_model.pt

    def trial_dir(self, trial, study_name: str) -> Path:
        path = self.settings.checkpoint_root / f"{self.phase}_trial_{trial.number}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()  # FileExistsError: never write into another trial's (or study's) folder
        write_json(path / "trial.json", {"study": study_name, "trial": trial.number, "family": self.family.name,
                                         "phase": self.phase, "storage": redact(self.settings.storage_url)})
        trial.set_user_attr("run_dir", str(path.resolve()))
        return path

    def make_trainer(self, run: RunConfig, run_dir: Path) -> Trainer:
        kw = dict(tensorboard=self.settings.tensorboard, progress=False, log_lines=False)
        if self.checkpoint is None:
            return Trainer(run, self.data, run_dir, **kw)
        tr = Trainer.continue_from(self.checkpoint, run, self.data, run_dir, **kw)
        if self._shared is not None:
            tr.training.share(self._shared)
        return tr

    def __call__(self, trial) -> float | tuple[float, ...]:
        params = {name: spec.suggest(trial, name) for name, spec in self.space.items()}
        run = self.trial_config(params)
        run_dir = self.trial_dir(trial, trial.study.study_name)
        log.info("trial %d (%s) starts: %s", trial.number, self.phase, params)
        trainer = self.make_trainer(run, run_dir)
        phase = trainer.phases[self.index]
        tracker = BestTracker(trial, self.phase, phase.tracked, phase.total, self.settings)
        tracker.model, trainer.eval_hook = trainer.model, tracker
        try:
            trainer.train(until=self.phase)
        except BaseException:
            if tracker.state is not None:  # a pruned (or stopped) trial keeps its best weights too
                tracker.restore()
                self._save_best(trainer, trial)
            raise
        tracker.restore()
        self._keep_cache(trainer)
        scores = trainer.training.score(self.phase, tracker.best_ev, self.settings.eval_samples,
                                        self.settings.disc_iterations)
        scores["best_iteration"] = tracker.best_ev.get("iteration", phase.total)
        self._save_best(trainer, trial)
        log.info("trial %d (%s) done: %s", trial.number, self.phase, scores)
        return self._values(trial, scores)

    def _keep_cache(self, trainer: Trainer) -> None:
        if self.checkpoint is not None and self._shared is None:
            self._shared = trainer.training.shared_cache()

    def _save_best(self, trainer: Trainer, trial) -> None:
        path = trainer.save("best_model.pt")
        for stale in trainer.run_dir.glob("*_final.pt"):
            stale.unlink()
        trial.set_user_attr("checkpoint", str(path.resolve()))

    def _values(self, trial, scores: dict[str, float]):
        for k, v in scores.items():
            trial.set_user_attr(k, v)
        if "coverage" in scores:  # a constraint (≤ 0: feasible): the sampler and the front prefer feasible trials
            trial.set_constraint("coverage", self.settings.min_coverage - scores["coverage"])
        if self.settings.mode == "single":
            return scores[self.objectives[0]]
        return tuple(scores[k] for k in self.objectives)
