"""StudyManager: create or resume a study, queue the baselines, run trials, chain a family's phases.

Re-running the same command resumes: the study is loaded from its storage and ``n_trials`` more
trials run. A study remembers what it was created with (stage, mode, preset, fixed overrides,
search space, starting checkpoint); resuming it with different settings is refused, because the
trials would no longer be comparable.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from ..config import ConfigError
from ..data.train_data import TrainData, load_train_data
from ..models.registry import get_family
from ..utils.parallel import process_map
from ..utils.threads import ENV as THREADS_ENV
from ..utils.threads import free_cores, override
from .config import OptunaConfig
from .objectives import PhaseObjective
from .space import baselines, check_space, space_to_dict
from .storage import open_storage, redact

log = logging.getLogger("trajsynth.tuning")


class StudyManager:
    def __init__(self, settings: OptunaConfig):
        self.settings = settings
        Path(settings.out_dir).mkdir(parents=True, exist_ok=True)
        self.storage = open_storage(settings.storage_url, heartbeat=settings.heartbeat)
        _log_to_file(Path(settings.out_dir) / "optuna.log")

    # ----- studies ----------------------------------------------------------
    def sampler(self):
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=self.settings.seed, multivariate=True, constant_liar=True,
                n_startup_trials=self.settings.n_startup_trials)

    def pruner(self, objective: PhaseObjective):
        import optuna

        if self.settings.mode == "pareto":
            return optuna.pruners.NopPruner()
        total = objective.total
        return optuna.pruners.HyperbandPruner(min_resource=min(objective.base.train.eval_interval, total),
                                              max_resource=total,
                                              reduction_factor=self.settings.hyperband_reduction_factor)

    def identity(self, objective: PhaseObjective) -> dict:
        s = self.settings
        return {"family": s.family, "phase": objective.phase, "objectives": list(objective.objectives),
                "mode": s.mode, "preset": s.preset,
                "overrides": s.overrides, "space": space_to_dict(objective.space),
                "init_checkpoint": objective.checkpoint_path}

    def study(self, objective: PhaseObjective, name: str):
        """Create the study (and queue the baselines) or load it and check it was made the same way."""
        import optuna

        n = len(objective.objectives) if self.settings.mode == "pareto" else 1
        kw = dict(storage=self.storage, sampler=self.sampler(), pruner=self.pruner(objective))
        ident = self.identity(objective)
        try:  # exactly one of several workers starting at once creates the study (and queues baselines)
            study = optuna.create_study(study_name=name, directions=["minimize"] * n, **kw)
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=name, **kw)
            self._check_identity(study, ident)
            return study
        study.set_user_attr("identity", ident)  # one write: a worker loading the study sees all of it or none
        if self.settings.enqueue_baselines:
            self._enqueue_baselines(study, objective)
        return study

    def _check_identity(self, study, ident: dict) -> None:
        stored = study.user_attrs.get("identity")
        if stored is None:  # created a moment ago by another worker, which has not written it yet
            return
        diff = [k for k in ident if json.dumps(stored.get(k), sort_keys=True) != json.dumps(ident[k], sort_keys=True)]
        if diff:
            detail = "; ".join(f"{k}: study has {stored.get(k)!r}, this run {ident[k]!r}" for k in diff)
            raise ConfigError(f"study {study.study_name!r} in {redact(self.settings.storage_url)} was created with "
                              f"other settings ({detail}). Re-run with its settings or choose another --study-name.")

    def _enqueue_baselines(self, study, objective: PhaseObjective) -> None:
        for base in baselines(self.settings.family, objective.phase):
            params = {k: v for k, v in base.items() if k in objective.space and objective.space[k].contains(v)}
            if params:
                study.enqueue_trial(params, skip_if_exists=True)
                log.info("queued baseline %s", params)

    def check_trial_folders(self, phase: str, name: str) -> None:
        """Refuse an output folder whose trial folders belong to another study (before any trial)."""
        for meta in sorted(self.settings.checkpoint_root.glob(f"{phase}_trial_*/trial.json")):
            owner = json.loads(meta.read_text()).get("study")
            if owner != name:
                raise ConfigError(f"{self.settings.checkpoint_root} holds trials of study {owner!r}, not {name!r}; "
                                  f"use another --out (or --study-name {owner} to resume that study)")

    # ----- running ----------------------------------------------------------
    def optimize(self, objective: PhaseObjective, n_trials: int | None, name: str | None = None,
                 timeout: float | None = None, progress: bool = False, jobs: int = 1):
        """Run ``n_trials`` more trials (in all), in this process or in ``jobs`` worker processes."""
        if not objective.space:
            raise ConfigError(f"{self.settings.family} has nothing to search in phase {objective.phase} (empty space)")
        name = name or self.settings.name_for(objective.phase)
        check_space(objective.space, objective.base, f"{objective.phase} search space")
        self.check_trial_folders(objective.phase, name)
        study = self.study(objective, name)  # created (baselines queued) before any worker starts
        log.info("study %s (%s): %d trials so far, running %s more in %d process(es)", name,
                 redact(self.settings.storage_url), len(study.trials), n_trials, jobs)
        if jobs > 1:
            self._parallel(objective, name, n_trials, timeout, jobs)
            return self.study(objective, name)
        study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(Exception,), gc_after_trial=True,
                       show_progress_bar=progress and n_trials is not None)
        return study

    def _parallel(self, objective: PhaseObjective, name: str, n_trials: int | None, timeout: float | None,
                  jobs: int) -> None:
        """``jobs`` spawned workers on the same storage, the free cores shared out between them."""
        threads = override() or max(1, free_cores() // jobs)
        shares = [None] * jobs if n_trials is None else [n_trials // jobs + (i < n_trials % jobs) for i in range(jobs)]
        work = [(self.settings, objective.phase, objective.checkpoint_path, name, k, timeout, threads)
                for k in shares if k != 0]
        process_map(_worker, work, len(work))

    def run_all(self, data: TrainData, n_trials: int, init: str | None = None, **kw) -> list:
        """A study per phase, each starting from the best trial of the one before. Returns the studies."""
        phases = get_family(self.settings.family).phase_names
        studies, origin = [], ""
        for i, phase in enumerate(phases):
            objective = PhaseObjective(self.settings, data, phase, init)
            studies.append(self.optimize(objective, n_trials, name=self.settings.name_for(phase, True) + origin, **kw))
            if i + 1 < len(phases):
                number, init = best_checkpoint(studies[-1])
                origin = f"_from_{phase}_trial{number}"
                print(f"{phases[i + 1]} starts from {phase} trial {number}: {init}")
        return studies

    def load_data(self) -> TrainData:
        from ..data.embedded import resolve_data_dir

        return load_train_data(resolve_data_dir(self.settings.data_dir))


def _worker(task: tuple) -> None:
    """One search worker process: load the study and run its share of the trials."""
    import os

    settings, phase, init, name, n_trials, timeout, threads = task
    os.environ[THREADS_ENV] = str(threads)  # each trial's trainer takes this many threads
    manager = StudyManager(settings)
    objective = PhaseObjective(settings, manager.load_data(), phase, init)
    study = manager.study(objective, name)
    study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(Exception,), gc_after_trial=True)


def best_checkpoint(study) -> tuple[int, str]:
    """The best finished trial with a checkpoint on this machine: lowest first objective on the front."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    front = study.best_trials if len(study.directions) > 1 else ([study.best_trial] if done else [])
    usable = [t for t in front if Path(t.user_attrs.get("checkpoint", "")).is_file()]
    if not usable:
        raise ConfigError(f"study {study.study_name!r} has no finished trial whose best_model.pt is on this machine; "
                          "run that phase first or pass --init")
    best = min(usable, key=lambda t: t.values[0])
    return best.number, best.user_attrs["checkpoint"]


def _log_to_file(path: Path) -> None:
    """Append Optuna's and the trials' log lines (with the worker's pid) to ``path``, once per process."""
    path = path.resolve()
    for name in ("optuna", "trajsynth.tuning"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        if any(getattr(h, "baseFilename", None) == str(path) for h in logger.handlers):
            continue
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s pid=%(process)d %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
