"""Evaluation commands: evaluate (report.json + report.md; --reconstructions: the autoencoder's ceiling),
visualize, benchmark (Sines / Stocks / Energy)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from ..config import parse_overrides
from ..data.embedded import EMBEDDED
from ..data.timeseries import BENCHMARKS
from ..data.timeseries import ENV_VAR as TIMEGAN_ENV
from ..models.registry import SERIES_FAMILY, family_names
from ..utils.atomic import write_text
from .errors import CliError
from .options import add_candidates, add_command, add_count, add_seed

SPLITS = ("train", "val", "test")
SHARED_TIMEGAN = Path("..") / "shared" / "datasets" / "timegan"


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "evaluate", raw=True,
        usage=_usage("evaluate") + "\n       trajsynth evaluate --reconstructions CKPT DATA_DIR [options]",
        help="every metric of a model (or of exported samples) against real trajectories",
        description="Evaluate a checkpoint:  trajsynth evaluate CKPT DATA_DIR [--split test]\n"
                    "or exported samples:  trajsynth evaluate --samples FILE.npz DATA_DIR\n"
                    "or the ceiling of a checkpoint's autoencoder:  trajsynth evaluate --reconstructions CKPT "
                    "DATA_DIR\n"
                    f"DATA_DIR may be the word '{EMBEDDED}': the embedded SapiMouse sample.\n"
                    "Writes report.json (metric keys → numbers) and report.md (with bands) into a new folder.")
    _add_inputs(p)
    p.add_argument("--reconstructions", action="store_true",
                   help="score the model's own reconstructions of the real movements (real lengths and "
                        "conditions) instead of generations, with the same metrics: the ceiling of each number for "
                        "a generator decoding through this autoencoder. One report per reconstruction path in "
                        "OUT/<path>/ (latent_wgan: bottleneck, direct; timegan: autoencoder) and all side by side in "
                        "OUT/summary.md; "
                        "an error for a family without an autoencoder")
    _add_common(p)
    add_count(p, "--repeats", default=3, help="repeats of the classifier-based scores (mean ± std)")
    p.add_argument("--plots", action="store_true", help="also write every figure of `visualize` into the folder")
    add_count(p, "--workers", default=None, help="processes for the post-hoc classifiers "
              "(default: one per CPU core, at most 4)")
    p.add_argument("--quick", action="store_true", help="short training of the learned metrics (smoke tests only: "
                   "not comparable with full reports)")
    p.set_defaults(func=cmd_evaluate)
    p = add_command(sub, "visualize", usage=_usage("visualize"),
                    help="figures of generated vs real trajectories (files only, headless)")
    _add_inputs(p)
    _add_common(p, n_default=1000)
    p.add_argument("--show", action="store_true", help="also open the figures on screen")
    p.set_defaults(func=cmd_visualize)
    _register_benchmark(sub)


def _usage(command: str) -> str:
    return (f"%(prog)s CKPT DATA_DIR [options]\n       trajsynth {command} --samples FILE.npz DATA_DIR [options]")


def _add_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="CKPT DATA_DIR", help="checkpoint and data directory (only DATA_DIR "
                   f"with --samples; '{EMBEDDED}': the embedded SapiMouse sample)")
    p.add_argument("--samples", metavar="FILE.npz", help="an .npz in the export-samples format, from any model")
    p.add_argument("--own-directions", action="store_true",
                   help="a directed family (ar_mdn) draws each movement's direction itself instead of going to the "
                        "real movement's end point (distance-only families always draw their own)")
    p.add_argument("--no-render", action="store_true",
                   help="score a continuous-output family's (latent_wgan's, timegan's) paths as decoded, not rendered "
                        "onto the event clock of its training data (whole px and ms)")
    add_candidates(p)


def _add_common(p: argparse.ArgumentParser, n_default: int = 2000) -> None:
    p.add_argument("--split", default="test", choices=SPLITS, help="real split to compare with")
    add_count(p, "--n", default=n_default, help="trajectories per set (fewer if the split is smaller)")
    add_seed(p, default=0, help="random seed")
    p.add_argument("--out", help="output folder (default: evaluation/eval_YYYYMMDD_HHMMSS); must not exist")


def _register_benchmark(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "benchmark", help="literature benchmark (Sines, Stocks, Energy) next to published results",
                    description="Train the model on the benchmark's windows (TimeGAN protocol: min-max "
                                "scaling, stride-1 windows of length 24), score it, and print our mean ± std "
                                "next to the published rows of TimeGAN, RTSGAN and Diffusion-TS.")
    p.add_argument("--dataset", required=True, choices=BENCHMARKS)
    p.add_argument("--family", default=SERIES_FAMILY, choices=family_names(),
                   help=f"model family to train on the windows (default: {SERIES_FAMILY})")
    add_count(p, "--runs", default=3, help="independent training runs (seeds seed, seed+1, ...)")
    p.add_argument("--data", help="CSV of stocks / energy, or its folder (default: $TRAJSYNTH_TIMEGAN_DATA, "
                   "else ../shared/datasets/timegan when it exists)")
    p.add_argument("--preset", default="fast", help="the family's preset")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    add_seed(p, default=0, help="seed of the first run")
    add_count(p, "--jobs", default=1, help="train this many runs at once, in separate processes")
    p.add_argument("--out", help="also write the table (.md) and numbers (.json) into this new folder")
    p.add_argument("--save-samples", metavar="DIR",
                   help="also write the real windows the runs are scored against to DIR/{dataset}_real.npz and each "
                        "run's generated windows to DIR/{dataset}_{family}_run{k}.npz (k = 1 … runs; key X, shape "
                        "(N, 24, F), both min-max scaled to [0, 1]), to rescore with another classifier; the files "
                        "must not exist")
    add_count(p, "--metric-repeats", default=None, metavar="N",
              help="post-hoc classifiers and predictors averaged per run (default: 10, as the authors' code; "
                   "1 with --quick)")
    p.add_argument("--ceiling", action="store_true",
                   help="also score each run's autoencoder copies of the real windows with the same classifiers "
                        "(column disc_ceiling: what a generator decoding through that autoencoder can reach at "
                        "best); with --save-samples they are written to DIR/{dataset}_{family}_run{k}_reconstructed"
                        ".npz. Families with an autoencoder only (latent_wgan, timegan, latent_diffusion)")
    p.add_argument("--quick", action="store_true", help="smoke test: 500 windows, short metric training and "
                   "one classifier per run (not comparable with the published rows)")
    p.set_defaults(func=cmd_benchmark)


def _out_dir(a: argparse.Namespace, prefix: str) -> Path:
    out = Path(a.out) if a.out else Path("evaluation") / f"{prefix}_{datetime.now():%Y%m%d_%H%M%S}"
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} already exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _sets(a: argparse.Namespace):
    """The EvaluationInputs (real, fake, reference, embed, source) of the command's inputs."""
    from ..evaluation.sources import evaluation_inputs

    _check_inputs(a, want=1 if a.samples else 2)
    if a.samples and a.candidates is not None:
        raise CliError("--candidates sets how a checkpoint generates: give CKPT DATA_DIR, not --samples")
    return evaluation_inputs(a.inputs[-1], a.split, a.n, a.seed, checkpoint=None if a.samples else a.inputs[0],
                             samples=a.samples, real_directions=not a.own_directions,
                             render=not a.no_render, candidates=a.candidates)


def _check_inputs(a: argparse.Namespace, want: int) -> None:
    if len(a.inputs) != want:
        usage = "--samples FILE.npz DATA_DIR" if a.samples else "CKPT DATA_DIR"
        raise ValueError(f"expected {usage}, got {len(a.inputs)} positional argument(s)")


def cmd_evaluate(a: argparse.Namespace) -> int:
    if a.reconstructions:
        return _evaluate_reconstructions(a)
    t0 = time.perf_counter()
    e = _sets(a)
    out = _out_dir(a, "eval")
    print(f"evaluating {e.source}: {len(e.fake)} generated vs {len(e.real)} real ({a.split}), into {out}")
    extra = {}
    if not a.samples:
        from ..evaluation.sources import activity_accuracy

        acc = activity_accuracy(a.inputs[0], a.inputs[-1], a.split)
        extra = {} if acc is None else {"activity_acc": acc}
    _score(a, e, out, t0, {"generated": e.source}, extra)
    return 0


def _score(a: argparse.Namespace, e, out: Path, t0: float, described: dict, extra: dict | None = None):
    """Every metric of e.fake against e.real → report.json + report.md in ``out``; the SuiteResult."""
    from ..evaluation.report import write_report
    from ..evaluation.suite import FULL, QUICK, evaluate

    res = evaluate(e.real, e.fake, e.reference, e.embed, seed=a.seed, repeats=a.repeats,
                   budget=QUICK if a.quick else FULL, workers=a.workers, log=print, paired=e.copies)
    for key, value in (extra or {}).items():  # e.g. activity_acc: the model's activity classifier on the real split
        res.put(key, value)
    meta = {**described, "real": f"{a.inputs[-1]} ({a.split}, {len(e.real)})",
            "real-vs-real reference": f"{len(e.reference)} trajectories of another split", "seed": a.seed,
            "latent space": "the model's own embedding" if e.embed else "the evaluator's own encoder",
            "budget": "quick (smoke test; not comparable with full reports)" if a.quick else "full"}
    if a.plots:
        _plots(e.real, e.fake, out, a.seed, label="generated" if e.copies is None else "reconstructed")
    meta["total time"] = f"{time.perf_counter() - t0:.0f} s"
    j, m = write_report(out, res, "trajsynth evaluation", meta)
    print(m.read_text())
    print(f"wrote {j} and {m} in {time.perf_counter() - t0:.0f} s")
    return res


def _evaluate_reconstructions(a: argparse.Namespace) -> int:
    """One report per reconstruction path of the checkpoint's autoencoder, and a side-by-side summary."""
    from ..evaluation.report import side_by_side
    from ..evaluation.sources import reconstruction_inputs

    if a.samples:
        raise CliError("--reconstructions scores a checkpoint's own copies of the real movements: give CKPT "
                       "DATA_DIR, not --samples")
    _check_inputs(a, want=2)
    if a.candidates is not None:
        raise CliError("--candidates sets how a checkpoint generates; --reconstructions scores copies of the real "
                       "movements")
    t0 = time.perf_counter()
    per_path = reconstruction_inputs(a.inputs[1], a.inputs[0], a.split, a.n, a.seed, render=not a.no_render)
    out = _out_dir(a, "eval")
    results = {}
    for path, e in per_path.items():
        print(f"evaluating the {path} reconstructions: {len(e.fake)} vs {len(e.real)} real ({a.split}), "
              f"into {out / path}")
        scored = {"scored": e.source, "reads as": _CEILING}
        results[path] = _score(a, e, out / path, time.perf_counter(), scored)
    meta = {"real": f"{a.inputs[1]} ({a.split}, {len(e.real)})", **{p: d.source for p, d in per_path.items()},
            "reads as": _CEILING, "reports": ", ".join(f"{p}/report.md" for p in per_path)}
    text = side_by_side(results, "trajsynth reconstruction ceiling", meta)
    write_text(out / "summary.md", text)
    print(text)
    print(f"wrote {out / 'summary.md'} in {time.perf_counter() - t0:.0f} s")
    return 0


_CEILING = ("the best any generator decoding through this path can score: if these copies are easy to tell from "
            "real movements, so are its generations")


def _plots(real, fake, out: Path, seed: int, show: bool = False, label: str = "generated") -> list[Path]:
    from ..figures import visualize_all

    if real.paths is None or fake.paths is None:
        raise ValueError("figures need pixel paths for both sets (a data directory with paths_*.npz)")
    real.name, fake.name = "real", label
    paths = visualize_all(real, fake, out, seed=seed, show=show)
    for p in paths:
        print(f"  figure {p}")
    return paths


def cmd_visualize(a: argparse.Namespace) -> int:
    e = _sets(a)
    out = _out_dir(a, "figures")
    print(f"figures of {e.source} vs {a.inputs[-1]} ({a.split}) into {out}")
    _plots(e.real, e.fake, out, a.seed, show=a.show)
    return 0


def cmd_benchmark(a: argparse.Namespace) -> int:
    from ..evaluation.literature import METRIC_REPEATS, results_json, results_table, run_benchmark
    from ..evaluation.suite import FULL, QUICK

    out = _out_dir(a, f"benchmark_{a.dataset}") if a.out else None
    data = a.data
    if data is None and not os.environ.get(TIMEGAN_ENV) and SHARED_TIMEGAN.is_dir():
        data = str(SHARED_TIMEGAN)  # a development checkout with the shared datasets beside it
    res = run_benchmark(a.dataset, a.family, a.runs, a.preset, parse_overrides(a.set), data, a.seed,
                        budget=QUICK if a.quick else FULL, max_windows=500 if a.quick else None, jobs=a.jobs,
                        log=lambda s: print(s, file=sys.stderr), save_samples=a.save_samples,
                        metric_repeats=a.metric_repeats or (1 if a.quick else METRIC_REPEATS), ceiling=a.ceiling)
    table = results_table(res)
    print(f"\n{a.dataset}: {res.n_windows} windows × 24 steps × {res.features} features, "
          f"{a.runs} run(s), {res.seconds:.0f} s\n")
    print(table)
    if res.samples:
        print(f"\nwrote the real windows to {res.samples[0]} and the generated ones to "
              f"{', '.join(p.name for p in res.samples[1:])}")
    if res.reconstructions:
        print(f"wrote the autoencoder's copies of the real windows to {', '.join(p.name for p in res.reconstructions)}")
    if out is not None:
        write_text(out / f"{a.dataset}.md", table + "\n")
        write_text(out / f"{a.dataset}.json", json.dumps(results_json(res), indent=2) + "\n")
        print(f"\nwrote {out}")
    return 0
