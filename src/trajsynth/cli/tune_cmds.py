"""``trajsynth tune``: hyperparameter search of the two-stage model with Optuna, and its analysis."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ConfigError, parse_overrides

DESCRIPTION = """\
Search hyperparameters of stage 1 (autoencoder), stage 2 (WGAN-GP on a frozen stage-1 model) or both.
Every trial trains briefly and is scored on the validation split; its best weights go to
OUT/checkpoints/optuna/stage{1,2}_trial_{n}/best_model.pt, the log to OUT/optuna.log, the study to
the storage (default: SQLite file OUT/optuna.db). Re-running the same command resumes the study
with N more trials. Several workers (processes or machines) share a study by passing the same
--storage and --study-name.

Objectives (minimised): stage 1 reconstruction MSE through the summary and relative latent error;
stage 2 summary MMD and discriminative score, with summary coverage >= --min-coverage as a
constraint; a stage-2 trial still below --collapse-coverage after half its iterations is stopped.
--mode single optimises the first objective alone and prunes with Hyperband.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="hyperparameter search with Optuna (stage 1, 2 or both), or --analyze a study",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=["1", "2", "both"], default="1")
    p.add_argument("--n-trials", type=int, help="trials to run in this call (per worker)")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--data-dir", help="processed data directory (default: the embedded SapiMouse sample)")
    p.add_argument("--out", default="tuning", help="output folder: optuna.db, optuna.log, checkpoints/, analysis/")
    p.add_argument("--storage", help="study storage: sqlite:///FILE, postgresql://…, or a journal file "
                                     "(journal:PATH or PATH.log); default sqlite:///OUT/optuna.db")
    p.add_argument("--study-name", help="default trajsynth_stage1 / trajsynth_stage2; with --stage both a prefix")
    p.add_argument("--stage1-checkpoint", help="finished stage-1 model for --stage 2 (e.g. a stage-1 trial's "
                                               "best_model.pt)")
    p.add_argument("--preset", default="default", help="model preset every trial starts from")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a config key for every trial (repeatable), e.g. --set stage1_iterations=30")
    p.add_argument("--space", help="YAML file replacing or removing search-space entries (see docs)")
    p.add_argument("--mode", choices=["pareto", "single"], default="pareto",
                   help="pareto: two objectives, Pareto front; single: one objective with Hyperband pruning")
    p.add_argument("--seed", type=int, help="sampler seed (reproducible with one worker; give workers different "
                                            "seeds or none)")
    p.add_argument("--min-coverage", type=float, default=0.25,
                   help="stage 2: a trial is feasible only if generated summaries cover this share of real ones")
    p.add_argument("--collapse-coverage", type=float, default=0.05,
                   help="stage 2: stop a trial whose coverage is still below this after half its iterations")
    p.add_argument("--eval-samples", type=int, default=1000, help="stage 2: validation sequences for the "
                                                                  "discriminative score")
    p.add_argument("--disc-iterations", type=int, default=2000, help="stage 2: classifier iterations of the "
                                                                     "discriminative score")
    p.add_argument("--heartbeat", type=int, default=60, help="seconds between a worker's heartbeats (database "
                   "storages): a trial whose worker is silent for 3 heartbeats is marked failed and run again once")
    p.add_argument("--no-baselines", action="store_true", help="do not queue the preset configurations first")
    p.add_argument("--tensorboard", action="store_true", help="TensorBoard logs in every trial folder")
    p.add_argument("--analyze", action="store_true", help="write the best trials / Pareto front and plots of "
                                                          "--study-name to OUT/analysis/NAME/")
    p.set_defaults(func=cmd_tune)


def _require_optuna() -> None:
    from .main import CliError

    try:
        import optuna  # noqa: F401
    except ModuleNotFoundError:
        raise CliError("the tune command needs Optuna: pip install 'trajsynth[tune]'") from None


def cmd_tune(a: argparse.Namespace) -> int:
    from .main import CliError

    _require_optuna()
    if a.analyze:
        return _analyze(a)
    if a.n_trials is None and a.timeout is None:
        raise CliError("give --n-trials N (or --timeout S)")
    if a.n_trials is not None and a.n_trials < 1:
        raise CliError("--n-trials must be >= 1")
    if a.stage == "2" and not a.stage1_checkpoint:
        raise CliError("--stage 2 needs --stage1-checkpoint (a finished stage-1 model, e.g. "
                       "OUT/checkpoints/optuna/stage1_trial_0/best_model.pt)")
    if a.stage1_checkpoint and not Path(a.stage1_checkpoint).is_file():
        raise CliError(f"--stage1-checkpoint {a.stage1_checkpoint} does not exist")
    return _search(a)


def _settings(a: argparse.Namespace):
    from ..tuning import OptunaConfig
    from ..tuning.space import load_space

    settings = OptunaConfig(
        data_dir=a.data_dir, out_dir=a.out, storage=a.storage, study_name=a.study_name, preset=a.preset,
        overrides=parse_overrides(a.set), space_file=a.space, mode=a.mode, seed=a.seed,
        min_coverage=a.min_coverage, collapse_coverage=a.collapse_coverage, eval_samples=a.eval_samples,
        disc_iterations=a.disc_iterations,
        enqueue_baselines=not a.no_baselines, tensorboard=a.tensorboard, heartbeat=a.heartbeat)
    for stage in (1, 2):  # a bad space file fails here, before storage or data are touched
        load_space(stage, a.space)
    return settings


def _search(a: argparse.Namespace) -> int:
    from ..tuning import Stage1Objective, Stage2Objective, StudyManager

    settings = _settings(a)
    manager = StudyManager(settings)
    data = manager.load_data()
    progress = dict(timeout=a.timeout, progress=sys.stderr.isatty())  # a bar on a terminal, not in logs
    if a.stage == "1":
        studies = [manager.run_stage1(Stage1Objective(settings, data), a.n_trials, **progress)]
    elif a.stage == "2":
        studies = [manager.run_stage2(Stage2Objective(settings, data, a.stage1_checkpoint), a.n_trials, **progress)]
    else:
        studies = list(manager.run_both(data, a.n_trials, **progress))
    for study in studies:
        _report(study, settings)
    return 0


def _report(study, settings) -> None:
    from ..tuning.analysis import best_trials, state_counts, trials_table

    counts = ", ".join(f"{n} {k.lower()}" for k, n in sorted(state_counts(study).items()))
    front = best_trials(study)
    print(f"\nstudy {study.study_name}: {len(study.trials)} trials ({counts})")
    if front:
        print(("Pareto front:" if len(study.directions) > 1 else "best trials:") + "\n" + trials_table(study, front))
    storage = f" --storage {settings.storage}" if settings.storage else ""
    print(f"log: {Path(settings.out_dir) / 'optuna.log'}; analyse with: trajsynth tune --analyze --study-name "
          f"{study.study_name} --out {settings.out_dir}{storage}")


def _analyze(a: argparse.Namespace) -> int:
    import optuna

    from ..tuning.analysis import analyze
    from ..tuning.storage import default_url, open_storage
    from .main import CliError

    if not a.study_name:
        raise CliError("--analyze needs --study-name NAME")
    storage = open_storage(a.storage or default_url(a.out), create=False)
    names = optuna.get_all_study_names(storage)
    if a.study_name not in names:
        raise ConfigError(f"no study {a.study_name!r} in {a.storage or default_url(a.out)}; it holds: "
                          f"{', '.join(names) or 'none'}")
    study = optuna.load_study(study_name=a.study_name, storage=storage)
    folder = Path(a.out) / "analysis" / a.study_name
    print(analyze(study, folder))
    print(f"wrote {folder}")
    return 0
