"""``trajsynth tune``: hyperparameter search of a family's phases with Optuna, and its analysis."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import ConfigError, parse_overrides
from ..models.registry import SERIES_FAMILY, family_names, get_family
from .errors import CliError
from .options import add_command, add_count, add_seed

DESCRIPTION = """\
Search hyperparameters of one phase of a model family (latent_wgan: stage1 = autoencoder, stage2 =
WGAN-GP on a frozen stage-1 model), or of every phase in turn (--phase all).
Every trial trains briefly and is scored on the validation split; its best weights go to
OUT/checkpoints/optuna/<phase>_trial_{n}/best_model.pt, the log to OUT/optuna.log, the study to
the storage (default: SQLite file OUT/optuna.db). Re-running the same command resumes the study
with N more trials. Several workers (processes or machines) share a study by passing the same
--storage and --study-name.

Objectives (minimised): stage 1 reconstruction MSE through the summary and relative latent error;
stage 2 summary MMD and discriminative score, with summary coverage >= --min-coverage as a
constraint; a stage-2 trial still below --collapse-coverage after half its iterations is stopped.
--mode single optimises the first objective alone and prunes with Hyperband.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "tune", raw=True, description=DESCRIPTION,
                    help="hyperparameter search with Optuna (one phase or all), or --analyze a study")
    add = p.add_argument
    add("--family", default=SERIES_FAMILY, choices=family_names(), help=f"model family (default: {SERIES_FAMILY})")
    add("--phase", metavar="PHASE", help="phase to search, or 'all' (default: the family's first phase)")
    add("--stage", choices=["1", "2", "both"], help="the first, second or all phases (latent_wgan: stage1, stage2)")
    add_count(p, "--n-trials", metavar="N", help="trials to run in this call (shared among its --jobs)")
    add_count(p, "--jobs", default=1, metavar="J", help="worker processes of this call, on one storage, the free "
                                                        "cores shared between them (default: 1)")
    add("--timeout", type=float, metavar="S", help="stop starting trials after this many seconds")
    add("--data-dir", metavar="DIR", help="processed data directory, or 'embedded' (default: the embedded "
                                          "SapiMouse sample)")
    add("--out", default="tuning", metavar="DIR", help="output folder: optuna.db, optuna.log, checkpoints/, "
                                                       "analysis/")
    add("--storage", metavar="URL", help="study storage: sqlite:///FILE, postgresql://…, or a journal file "
                                         "(journal:PATH or PATH.log); default sqlite:///OUT/optuna.db")
    add("--study-name", metavar="NAME", help="default trajsynth_<phase>; with --phase all a prefix")
    add("--init", "--stage1-checkpoint", dest="init", metavar="CKPT",
        help="checkpoint whose earlier phases are done, for a later phase (e.g. a stage-1 trial's best_model.pt)")
    add("--preset", default="default", help="model preset every trial starts from")
    add("--set", action="append", default=[], metavar="KEY=VALUE",
        help="fix a config key for every trial (repeatable), e.g. --set stage1_iterations=30")
    add("--space", metavar="FILE", help="YAML file replacing or removing search-space entries (see README)")
    add("--mode", choices=["pareto", "single"], default="pareto",
        help="pareto: two objectives, Pareto front; single: one objective with Hyperband pruning")
    add_seed(p, "--seed", metavar="S", help="sampler seed (reproducible with one worker; give workers different "
                                            "seeds or none)")
    add("--min-coverage", type=float, default=0.25, metavar="F",
        help="stage 2: a trial is feasible only if generated summaries cover this share of real ones")
    add("--collapse-coverage", type=float, default=0.05, metavar="F",
        help="stage 2: stop a trial whose coverage is still below this after half its iterations")
    add_count(p, "--eval-samples", default=1000, metavar="N",
              help="stage 2: validation sequences for the discriminative score")
    add_count(p, "--disc-iterations", default=2000, metavar="N",
              help="stage 2: classifier iterations of the discriminative score")
    add_count(p, "--heartbeat", default=60, metavar="S",
              help="seconds between a worker's heartbeats (database storages): a trial whose worker is silent for 3 "
                   "heartbeats is marked failed and run again once")
    add("--no-baselines", action="store_true", help="do not queue the preset configurations first")
    add("--tensorboard", action="store_true", help="TensorBoard logs in every trial folder")
    add("--analyze", action="store_true", help="write the best trials / Pareto front and plots of --study-name to "
                                               "OUT/analysis/NAME/")
    p.set_defaults(func=cmd_tune)


def _require_optuna() -> None:

    try:
        import optuna  # noqa: F401
    except ImportError:
        raise CliError("the tune command needs Optuna: pip install 'trajsynth[tune]'") from None


def cmd_tune(a: argparse.Namespace) -> int:

    _require_optuna()
    if a.analyze:
        return _analyze(a)
    if a.n_trials is None and a.timeout is None:
        raise CliError("give --n-trials N (or --timeout S)")
    phase = _phase(a)
    if phase not in ("all", get_family(a.family).phase_names[0]) and not a.init:
        raise CliError(f"--phase {phase} needs --init CKPT (a checkpoint whose earlier phases are done, e.g. "
                       "OUT/checkpoints/optuna/stage1_trial_0/best_model.pt)")
    if a.init and not Path(a.init).is_file():
        raise CliError(f"--init {a.init} does not exist")
    return _search(a, phase)


def _phase(a: argparse.Namespace) -> str:
    names = get_family(a.family).phase_names
    if a.stage:  # --stage N: the N-th phase (latent_wgan's stage1 / stage2), both: all
        if a.phase or (a.stage != "both" and int(a.stage) > len(names)):
            raise CliError(f"give --phase or --stage, not both; {a.family} has the phases {', '.join(names)}")
        return "all" if a.stage == "both" else names[int(a.stage) - 1]
    phase = a.phase or names[0]
    if phase != "all" and phase not in names:
        raise CliError(f"{a.family} has no phase {phase!r}; choose from {', '.join(names)} or all")
    return phase


def _settings(a: argparse.Namespace):
    from ..training.setup import build_run_config
    from ..tuning import OptunaConfig
    from ..tuning.space import load_space

    settings = OptunaConfig(
        family=a.family, data_dir=a.data_dir, out_dir=a.out, storage=a.storage, study_name=a.study_name,
        preset=a.preset,
        overrides=parse_overrides(a.set), space_file=a.space, mode=a.mode, seed=a.seed,
        min_coverage=a.min_coverage, collapse_coverage=a.collapse_coverage, eval_samples=a.eval_samples,
        disc_iterations=a.disc_iterations,
        enqueue_baselines=not a.no_baselines, tensorboard=a.tensorboard, heartbeat=a.heartbeat)
    build_run_config(a.family, a.preset, settings.overrides)  # so does a bad --set key or value
    for phase in get_family(a.family).phase_names:  # a bad space file fails here, before storage or data are touched
        load_space(a.family, phase, a.space)
    return settings


def _search(a: argparse.Namespace, phase: str) -> int:
    from ..tuning import PhaseObjective, StudyManager

    settings = _settings(a)
    manager = StudyManager(settings)
    data = manager.load_data()
    progress = dict(timeout=a.timeout, progress=sys.stderr.isatty(), jobs=a.jobs)  # a bar on a terminal only
    if phase == "all":
        studies = manager.run_all(data, a.n_trials, a.init, **progress)
    else:
        studies = [manager.optimize(PhaseObjective(settings, data, phase, a.init), a.n_trials, **progress)]
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
