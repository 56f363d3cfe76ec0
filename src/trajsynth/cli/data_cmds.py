"""Data commands: preprocess, validate-data, summarize, quickstart."""

from __future__ import annotations

import argparse
import json
import sys

from ..data.embedded import CITATION, embedded_data_dir, resolve_data_dir
from ..data.preprocess import PreprocessConfig, preprocess
from ..data.segment import SegmentConfig
from ..data.summary import format_summary, summarize
from ..data.ts_format import preprocess_ts
from ..data.validate import validate_data_dir
from .errors import CliError
from .options import add_command, add_count, add_seed

DATA_DIR_HELP = "data directory, or 'embedded' (default: the embedded SapiMouse sample)"


def register(sub: argparse._SubParsersAction) -> None:
    _add_preprocess(sub)
    p = add_command(sub, "validate-data", help="check a processed data directory (exit 0 valid, 1 invalid)",
                    description="Check presence, shapes, dtypes, ranges, NaN/Inf, lengths, zero padding, "
                                "equal N across X/C/L and user-disjoint splits of a data directory.")
    p.add_argument("data_dir", nargs="?", help=DATA_DIR_HELP)
    p.set_defaults(func=cmd_validate)
    p = add_command(sub, "summarize", help="counts, distance/duration statistics and batching report of a data dir")
    p.add_argument("data_dir", nargs="?", help=DATA_DIR_HELP)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_summarize)
    p = add_command(sub, "quickstart", help="the main job: train on the embedded data, generate, write samples + plot",
                    description="Validate the embedded SapiMouse sample, train the two-stage model on it "
                                "(preset 'fast'), generate trajectories for the test users' distances and write "
                                "them as .npz with a real-vs-generated plot into a new run folder.")
    p.add_argument("--out", default="checkpoints", help="base folder of the run")
    add_count(p, "--n", default=500, help="trajectories to generate")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    p.set_defaults(func=cmd_quickstart)


def _add_preprocess(sub: argparse._SubParsersAction) -> None:
    d, s = PreprocessConfig(), SegmentConfig()
    p = add_command(
        sub, "preprocess", help="raw mouse logs (or labelled .ts series) -> processed data directory",
        description="Read SapiMouse or Balabit CSV logs (plain or .gz) below RAW_DIR, cut them into "
                    "point-to-point movements (release -> moves -> next press, drags excluded), split by "
                    "user and write the 8-feature data directory OUT_DIR, with each movement's activity label (the "
                    "click that ends it) and domain label (its raw directory's name). Several RAW_DIRs are merged "
                    "into one directory, one domain each (users named DIR:user). With --format ts: read "
                    "RAW_DIR/{DATASET}_TRAIN.ts (train and validation, stratified by class) and _TEST.ts (test) "
                    "of the UEA/UCR archive into a labelled series data directory.",
    )
    p.add_argument("raw_dir", nargs="+", metavar="RAW_DIR", help="raw data directory (mouse logs: one or several)")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--format", choices=["auto", "sapimouse", "balabit", "ts"], default=d.format,
                   help="log format; auto reads it from each file's header; ts: UEA/UCR .ts files (needs --dataset)")
    p.add_argument("--dataset", help="with --format ts: the files' name before _TRAIN.ts / _TEST.ts (BasicMotions)")
    add_count(p, "--max-seq-len", minimum=2, default=d.max_seq_len, help="longest movement kept, in points")
    p.add_argument("--long-policy", choices=["drop", "resample"], default=d.long_policy,
                   help="movements with more points than max-seq-len: drop them, or keep evenly spaced points")
    add_seed(p, default=d.seed, help="seed of the user split")
    p.add_argument("--val-frac", type=float, default=d.val_frac, help="share of users in validation")
    p.add_argument("--test-frac", type=float, default=d.test_frac, help="share of users in test")
    p.add_argument("--min-distance", type=float, default=s.min_distance, help="px")
    p.add_argument("--max-distance", type=float, default=s.max_distance, help="px")
    p.add_argument("--max-duration", type=float, default=s.max_duration, help="ms")
    p.add_argument("--pause-ms", type=float, default=s.pause_ms, help="a time gap above this is a pause")
    p.add_argument("--pause-policy", choices=["split", "drop"], default=s.pause_policy,
                   help="split: keep the part after the last pause; drop: discard the movement")
    add_count(p, "--min-points", minimum=2, default=s.min_points, help="shortest movement kept, in points")
    add_count(p, "--workers", default=None, help="reader processes (default: up to 4)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_preprocess)


def cmd_preprocess_ts(a: argparse.Namespace) -> int:
    if len(a.raw_dir) != 1:
        raise CliError("--format ts reads one RAW_DIR")
    a.raw_dir = a.raw_dir[0]
    if not a.dataset:
        raise CliError("--format ts needs --dataset NAME (the files NAME_TRAIN.ts and NAME_TEST.ts in RAW_DIR)")
    if not 0 <= a.val_frac < 1:
        raise CliError(f"--val-frac must be in [0, 1), got {a.val_frac}")
    meta = preprocess_ts(a.raw_dir, a.out_dir, a.dataset, a.val_frac, a.seed, overwrite=a.overwrite)
    c = meta["counts"]
    print(f"wrote {a.out_dir}: {sum(c.values())} series of {len(meta['feature_names'])} channels × up to "
          f"{meta['max_seq_len']} steps (train {c['train']}, val {c['val']}, test {c['test']}), activities "
          f"{', '.join(meta['activity_names'])}; values clipped to the training range: {meta['clipped_values']}")
    return 0


def cmd_preprocess(a: argparse.Namespace) -> int:
    if a.format == "ts":
        return cmd_preprocess_ts(a)
    if a.dataset:
        raise CliError("--dataset is for --format ts only")
    seg = SegmentConfig(a.min_distance, a.max_distance, a.max_duration, a.pause_ms, a.pause_policy, a.min_points)
    cfg = PreprocessConfig(a.format, a.max_seq_len, a.long_policy, a.seed, a.val_frac, a.test_frac, seg)
    raw = a.raw_dir[0] if len(a.raw_dir) == 1 else a.raw_dir
    meta = preprocess(raw, a.out_dir, cfg, overwrite=a.overwrite, workers=a.workers, progress=not a.quiet)
    for m in meta["messages"]:
        print(f"warning: {m}", file=sys.stderr)
    c = meta["counts"]
    print(f"wrote {a.out_dir}: {sum(c.values())} movements (train {c['train']}, val {c['val']}, "
          f"test {c['test']}) from {len(meta['source_files'])} files in {meta['seconds']:.1f} s")
    print(f"  users: train {len(meta['users']['train'])}, val {len(meta['users']['val'])}, "
          f"test {len(meta['users']['test'])}")
    if meta["skipped_rows"] or meta["skipped_files"]:
        print(f"  skipped rows: {meta['skipped_rows']}; skipped files: {len(meta['skipped_files'])}")
    print(f"  dropped events: {meta['dropped_events']}")
    print(f"  dropped movements: {meta['dropped_movements']}")
    print(f"  labels: activity {', '.join(meta['activity_names'])}; domain {', '.join(meta['domain_names'])}")
    return 0


def cmd_validate(a: argparse.Namespace) -> int:
    report = validate_data_dir(resolve_data_dir(a.data_dir, must_exist=False))
    print(report.format())
    return 0 if report.ok else 1


def cmd_summarize(a: argparse.Namespace) -> int:
    s = summarize(resolve_data_dir(a.data_dir))
    print(json.dumps(s, indent=2) if a.json else format_summary(s))
    return 0


def cmd_quickstart(a: argparse.Namespace) -> int:
    from ..config import parse_overrides
    from ..quickstart import run_quickstart
    from ..training.loop import TrainingDiverged
    from ..training.setup import build_run_config

    values = parse_overrides(a.set)
    build_run_config(values=values, preset="fast")  # a bad --set fails here, before anything is printed
    data_dir = embedded_data_dir()
    print(f"Embedded data: SapiMouse sample. Cite: {CITATION}")
    report = validate_data_dir(data_dir)
    print(report.format())
    if not report.ok:
        return 1
    print(format_summary(summarize(data_dir)))
    try:
        run_quickstart(data_dir, a.out, a.n, values)
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0

