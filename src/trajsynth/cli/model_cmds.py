"""Model commands of the two-stage latent WGAN-GP: train, resume, generate, export, inspect, quick-test."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..config import ConfigError, from_dict, load_yaml, parse_overrides, replace, to_dict
from ..data.directory import load_split
from ..data.embedded import embedded_data_dir
from ..models.latent_wgan.config import ARCH_FIELDS, PRESETS, LatentWGANConfig, get_config
from ..models.latent_wgan.model import AUTOENCODER_PARTS, LatentWGAN
from ..serving.export import describe, write_samples
from ..serving.sampler import TrajectorySampler, build_model
from ..training.checkpoint import load_checkpoint
from ..training.data import load_train_data
from ..training.runs import new_run_dir
from ..training.two_stage import (
    TrainingDiverged,
    TwoStageTrainer,
    load_stage1_checkpoint,
    stage1_direct_mse,
    stage2_trainer,
)


def register(sub: argparse._SubParsersAction) -> None:
    for name, func, help_ in (("train", cmd_train, "train both stages (autoencoder, then WGAN-GP)"),
                              ("train-stage1", cmd_train_stage1, "train the autoencoder only"),
                              ("train-stage2", cmd_train_stage2, "train the WGAN-GP on a stage-1 checkpoint")):
        p = sub.add_parser(name, help=help_, description=help_ + ".")
        _add_train_args(p)
        if name == "train-stage2":
            p.add_argument("--stage1-checkpoint", required=True, help="stage1_final.pt of an earlier run")
        p.set_defaults(func=func)
    p = sub.add_parser("resume", help="continue a run from any checkpoint (mid stage 1 or stage 2)",
                       description="Continue training from a checkpoint with its optimiser, scheduler and RNG "
                                   "state; writes into a new run folder.")
    p.add_argument("checkpoint")
    p.add_argument("--data-dir", help="data directory (default: the one stored in the checkpoint)")
    _add_run_args(p)
    p.set_defaults(func=cmd_resume)
    _add_generation_cmds(sub)
    p = sub.add_parser("inspect-model", help="print the architecture and parameter counts of a configuration")
    _add_config_args(p)
    p.set_defaults(func=cmd_inspect_model)
    p = sub.add_parser("inspect-checkpoint", help="print what a checkpoint holds")
    p.add_argument("checkpoint")
    p.set_defaults(func=cmd_inspect_checkpoint)
    p = sub.add_parser("quick-test", help="smoke test: both stages briefly on the embedded data, generate, summary")
    p.add_argument("--out", default=None, help="base folder for the run (default: a temporary folder)")
    p.add_argument("--iterations", type=int, default=300, help="iterations of each stage")
    p.set_defaults(func=cmd_quick_test)


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="default", choices=sorted(PRESETS), help="starting configuration")
    p.add_argument("--config", help="YAML file of config keys (applied after the preset)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (repeatable), e.g. --set stage1_iterations=500")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="checkpoints", help="base folder; each run gets a new run_YYYYMMDD_HHMMSS")
    p.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", nargs="?", help="processed data directory (default: the embedded SapiMouse sample)")
    _add_config_args(p)
    _add_run_args(p)
    p.add_argument("--quality-filter-z", type=float, default=0.0,
                   help="drop training sequences whose summary statistics lie beyond this z-score (0: off)")


def build_config(a: argparse.Namespace, max_seq_len: int | None = None) -> LatentWGANConfig:
    """Preset → YAML file → --set overrides; max_seq_len follows the data unless set."""
    cfg = get_config(a.preset)
    file_values = load_yaml(a.config) if getattr(a, "config", None) else {}
    overrides = {**file_values, **parse_overrides(a.set)}
    if max_seq_len is not None:
        if "max_seq_len" in overrides and overrides["max_seq_len"] != max_seq_len:
            raise ConfigError(f"max_seq_len={overrides['max_seq_len']} does not match the data ({max_seq_len})")
        overrides["max_seq_len"] = max_seq_len
    return replace(cfg, overrides)


def _data_dir(a: argparse.Namespace) -> Path:
    if a.data_dir:
        return Path(a.data_dir)
    print("no DATA_DIR given: using the embedded SapiMouse sample", file=sys.stderr)
    return embedded_data_dir()


def _trainer(a, cfg, data) -> TwoStageTrainer:
    run = new_run_dir(a.out)
    print(f"run folder: {run}")
    return TwoStageTrainer(cfg, data, run, tensorboard=not a.no_tensorboard, progress=not a.quiet)


def _run(func) -> int:
    """Run a training call; a diverged loss is a clean message and exit status 1."""
    try:
        func()
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    d = _data_dir(a)
    data = load_train_data(d, a.quality_filter_z)
    tr = _trainer(a, build_config(a, data.train.max_len), data)
    rc = _run(tr.train)
    if rc == 0:
        print(f"done: {tr.run_dir / 'final.pt'}")
    return rc


def cmd_train_stage1(a: argparse.Namespace) -> int:
    data = load_train_data(_data_dir(a), a.quality_filter_z)
    tr = _trainer(a, build_config(a, data.train.max_len), data)
    rc = _run(tr.train_stage1)
    if rc == 0:
        mse = stage1_direct_mse(tr.model, data.val or data.train)
        print(f"done: {tr.run_dir / 'stage1_final.pt'} (validation direct MSE {mse:.5f})")
    return rc


def cmd_train_stage2(a: argparse.Namespace) -> int:
    ckpt = load_stage1_checkpoint(a.stage1_checkpoint)
    data = load_train_data(_data_dir(a), a.quality_filter_z)
    stored = from_dict(LatentWGANConfig, ckpt["config"])
    requested = build_config(a, data.train.max_len)
    mismatch = {k: (getattr(stored, k), getattr(requested, k)) for k in ARCH_FIELDS
                if getattr(stored, k) != getattr(requested, k) and _explicit(a, k)}
    if mismatch:
        detail = ", ".join(f"{k} is {v[0]} in the checkpoint but {v[1]} was asked" for k, v in mismatch.items())
        raise ConfigError(f"config/checkpoint mismatch for {a.stage1_checkpoint}: {detail}")
    cfg = replace(requested, {k: getattr(stored, k) for k in ARCH_FIELDS})
    run = new_run_dir(a.out)
    print(f"run folder: {run}")
    tr = stage2_trainer(ckpt, cfg, data, run, tensorboard=not a.no_tensorboard, progress=not a.quiet)

    def stage2():
        tr.train_stage2()
        tr.save("final.pt")

    rc = _run(stage2)
    if rc == 0:
        print(f"done: {tr.run_dir / 'final.pt'}")
    return rc


def _explicit(a: argparse.Namespace, key: str) -> bool:
    """Was ``key`` set by the user (preset, file or --set), not just defaulted?"""
    sources = [parse_overrides(a.set), load_yaml(a.config) if a.config else {}, PRESETS.get(a.preset, {})]
    return key != "max_seq_len" and any(key in s for s in sources)


def cmd_resume(a: argparse.Namespace) -> int:
    ckpt = load_checkpoint(a.checkpoint)
    d = a.data_dir or ckpt.get("data", {}).get("data_dir")
    if not d or not Path(d).is_dir():
        raise FileNotFoundError(f"data directory {d!r} of this checkpoint is not available; pass --data-dir")
    data = load_train_data(d)
    run = new_run_dir(a.out)
    print(f"run folder: {run} (resuming {a.checkpoint})")
    tr = TwoStageTrainer.from_checkpoint(a.checkpoint, data, run, tensorboard=not a.no_tensorboard,
                                         progress=not a.quiet)
    rc = _run(tr.train)
    if rc == 0:
        print(f"done: {tr.run_dir / 'final.pt'}")
    return rc


def _add_generation_cmds(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate trajectories and print a summary (optionally save them)")
    p.add_argument("checkpoint")
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--distance", type=float, default=None, help="start-to-end distance in px (default: as in training)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="also write the samples to this .npz (export format)")
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("export-samples", help="generate N trajectories into an .npz for evaluation")
    p.add_argument("checkpoint")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--out", required=True, help="output .npz (must not exist)")
    p.add_argument("--distance", type=float, default=None, help="one distance in px for all samples")
    p.add_argument("--conditions-from", help="take the conditions of this data directory's split, in order")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_export)


def cmd_generate(a: argparse.Namespace) -> int:
    sampler = TrajectorySampler.from_checkpoint(a.checkpoint)
    t0 = time.perf_counter()
    g = sampler.generate(a.n, a.distance, a.seed)
    print(f"{describe(g)} | {a.n / (time.perf_counter() - t0):.0f} traj/s")
    for i, p in enumerate(g.paths[: min(3, a.n)]):
        print(f"  #{i}: {len(p)} points, {p[-1, 0]:.0f} ms, ends at ({p[-1, 1]:.1f}, {p[-1, 2]:.1f}) px")
    if a.out:
        write_samples(Path(a.out), g)
        print(f"wrote {a.out}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    sampler = TrajectorySampler.from_checkpoint(a.checkpoint)
    conditions = None
    if a.conditions_from:
        C = load_split(a.conditions_from, a.split, with_paths=False).C
        if len(C) < a.n:
            raise ValueError(f"{a.conditions_from} split {a.split} has {len(C)} conditions, fewer than --n {a.n}")
        conditions = C[: a.n]
    g = sampler.generate(a.n, a.distance, a.seed, conditions=conditions)
    write_samples(Path(a.out), g)
    print(f"wrote {a.out}: {describe(g)}")
    return 0


def cmd_inspect_model(a: argparse.Namespace) -> int:
    cfg = build_config(a)
    model = LatentWGAN(cfg)
    print(model)
    print(f"\nParameters (preset {a.preset}):")
    parts = (*AUTOENCODER_PARTS, "generator", "critic")
    for name in parts:
        print(f"  {name:15s} {sum(p.numel() for p in getattr(model, name).parameters()):>10,d}")
    print(f"  {'total':15s} {sum(p.numel() for p in model.parameters()):>10,d}")
    return 0


def cmd_inspect_checkpoint(a: argparse.Namespace) -> int:
    ckpt = load_checkpoint(a.checkpoint)
    model = build_model(ckpt, a.checkpoint)
    st = ckpt.get("trainer_state", {})
    print(f"checkpoint {a.checkpoint}")
    print(f"  family {ckpt.get('model_family')}, arch_version {ckpt.get('arch_version')}, "
          f"format version {ckpt.get('version')}")
    print(f"  stage {st.get('stage')}, iteration {st.get('iteration')}, stage1_done {st.get('stage1_done')} "
          f"(converged at {st.get('stage1_converged_at')}), stage2_done {st.get('stage2_done')}")
    print(f"  parameters {sum(p.numel() for p in model.parameters()):,d}; data {ckpt['data'].get('data_dir')}")
    print("  config:")
    for k, v in to_dict(model.cfg).items():
        print(f"    {k}: {v}")
    return 0


def cmd_quick_test(a: argparse.Namespace) -> int:
    import tempfile

    base = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="trajsynth-quick-"))
    d = embedded_data_dir()
    data = load_train_data(d)
    n = a.iterations
    cfg = get_config("fast", max_seq_len=data.train.max_len, stage1_iterations=n, stage2_iterations=n,
                     stage1_threshold=0.0, log_interval=max(1, n // 3), eval_interval=n, save_interval=n)
    t0 = time.perf_counter()
    tr = TwoStageTrainer(cfg, data, new_run_dir(base), tensorboard=False, progress=False)
    rc = _run(tr.train)
    if rc:
        return rc
    sampler = TrajectorySampler.from_checkpoint(tr.run_dir / "final.pt")
    g = sampler.generate(200, seed=0)
    print(f"quick test passed in {time.perf_counter() - t0:.0f} s: {describe(g)}")
    print(f"run folder: {tr.run_dir}")
    return 0
