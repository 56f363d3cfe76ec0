"""Model commands of every family: train, resume, generate, export, inspect, quick-test."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from ..config import ConfigError, parse_overrides, to_dict
from ..data.directory import load_split
from ..data.embedded import EMBEDDED, embedded_data_dir, resolve_data_dir
from ..data.train_data import load_train_data
from ..models.base import StepContext
from ..models.checkpoint import build_model, checkpoint_family, load_checkpoint, newest_checkpoint
from ..models.registry import DEFAULT_FAMILY, family_names, get_family
from ..serving.export import check_samples_path, describe, write_samples
from ..serving.sampler import TrajectorySampler
from ..training import distributed
from ..training.loop import Trainer, TrainingDiverged
from ..training.runs import new_run_dir
from ..training.setup import build_run_config, check_until, continuing_config, load_continuable, user_values
from ..utils.atomic import save_npz
from .errors import CliError
from .options import add_candidates, add_command, add_count, add_seed


def _family_help() -> str:
    return "; ".join(f"{n}: presets {', '.join(sorted(get_family(n).presets))}" for n in family_names())


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", help=f"train a model family (default: {DEFAULT_FAMILY}) into a new run folder",
                    description="Train every phase of a family (or up to --until), optionally continuing "
                                "from the finished phases of a checkpoint (--init).")
    _add_train_args(p)
    p.add_argument("--until", metavar="PHASE", help="stop after this phase (e.g. stage1)")
    p.add_argument("--init", metavar="CKPT", help="take over the finished phases of this checkpoint and train the "
                                                   "rest (e.g. stage 2 on a stage1_final.pt)")
    p.add_argument("--autoencoder", metavar="CKPT", help="latent_diffusion: use this finished two-stage "
                                                          "(latent_wgan) autoencoder, frozen, instead of training one")
    add_count(p, "--ddim-steps", default=None, metavar="N",
              help="latent_diffusion: DDIM steps of its sampling (= --set ddim_steps=N; default 100)")
    p.set_defaults(func=cmd_train)
    p = add_command(sub, "train-stage1", help="latent_wgan: train the autoencoder only (= train --until stage1)")
    _add_train_args(p, family=False)
    p.set_defaults(func=cmd_train_stage1)
    p = add_command(sub, "train-stage2", help="latent_wgan: the WGAN-GP on a stage-1 checkpoint (= train --init CKPT)")
    _add_train_args(p, family=False)
    p.add_argument("--stage1-checkpoint", required=True, help="stage1_final.pt of an earlier run")
    p.set_defaults(func=cmd_train_stage2)
    p = add_command(sub, "resume", help="continue a run from any checkpoint (any phase)",
                    description="Continue training from a checkpoint with its optimiser, scheduler and RNG "
                                "state; writes into a new run folder. Given a run folder, resumes from its "
                                "checkpoint that got furthest (by phase and iteration).")
    p.add_argument("checkpoint", help="a checkpoint file, or a run folder (its furthest readable checkpoint)")
    p.add_argument("--data-dir", help="data directory, or 'embedded' (default: the one stored in the checkpoint)")
    _add_run_args(p)
    p.set_defaults(func=cmd_resume)
    _add_generation_cmds(sub)
    _add_encode(sub)
    p = add_command(sub, "inspect-model", help="print the architecture and parameter counts of a configuration")
    _add_config_args(p)
    p.set_defaults(func=cmd_inspect_model)
    p = add_command(sub, "inspect-checkpoint", help="print what a checkpoint holds")
    p.add_argument("checkpoint")
    p.set_defaults(func=cmd_inspect_checkpoint)
    p = add_command(sub, "quick-test", help="smoke test: train briefly on the embedded data, generate, summary")
    p.add_argument("--family", default=DEFAULT_FAMILY, choices=family_names(), help="model family")
    p.add_argument("--out", default=None, help="base folder for the run (default: a temporary folder)")
    add_count(p, "--iterations", default=300, help="iterations of each phase")
    p.set_defaults(func=cmd_quick_test)


def _add_config_args(p: argparse.ArgumentParser, family: bool = True) -> None:
    if family:
        p.add_argument("--family", default=DEFAULT_FAMILY, choices=family_names(),
                       help=f"model family (default: {DEFAULT_FAMILY})")
    p.add_argument("--preset", default=None, help=f"starting configuration (default: default). {_family_help()}")
    p.add_argument("--config", help="YAML file of config keys (applied after the preset)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (repeatable), e.g. --set stage1_iterations=500")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="checkpoints", help="base folder; each run gets a new run_YYYYMMDD_HHMMSS")
    p.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_train_args(p: argparse.ArgumentParser, family: bool = True) -> None:
    p.add_argument("data_dir", nargs="?", help=f"processed data directory, or '{EMBEDDED}' (default: the embedded "
                                               "SapiMouse sample)")
    _add_config_args(p, family)
    _add_run_args(p)
    p.add_argument("--quality-filter-z", type=float, default=0.0,
                   help="drop training sequences whose summary statistics lie beyond this z-score (0: off)")


def _values(a: argparse.Namespace) -> dict:
    values = user_values(a.config, parse_overrides(a.set))
    if getattr(a, "ddim_steps", None) is not None:
        values["ddim_steps"] = a.ddim_steps
    return values


def _data_dir(a: argparse.Namespace, ctx: StepContext) -> Path:
    if a.data_dir is None and ctx.is_main:
        print("no DATA_DIR given: using the embedded SapiMouse sample", file=sys.stderr)
    with distributed.local_main_first(ctx):  # one process per machine builds the cached embedded copy
        return resolve_data_dir(a.data_dir)


def _run_kw(a: argparse.Namespace, ctx: StepContext) -> dict:
    return dict(tensorboard=not a.no_tensorboard, progress=not a.quiet, ctx=ctx)


def _start_from(a: argparse.Namespace, family: str, init: str | None) -> tuple[str | None, dict | None]:
    """(path, checkpoint) a run continues from: --init's, or --autoencoder's (checked, not yet adapted)."""
    source = getattr(a, "autoencoder", None)
    if source is None:
        return init, load_continuable(init, family) if init else None
    if init:
        raise ConfigError("give --init or --autoencoder, not both")
    if get_family(family).start_from is None:
        raise ConfigError(f"--autoencoder applies to --family latent_diffusion, not {family}")
    ckpt = load_checkpoint(source)
    checkpoint_family(ckpt, source)  # a known family, of a version this build reads
    return source, ckpt


def _train(a: argparse.Namespace, family: str, init: str | None, until: str | None) -> int:
    values = _values(a)
    init, ckpt = _start_from(a, family, init)
    adopt = getattr(a, "autoencoder", None) is not None
    if ckpt is None or adopt:  # a bad key or value fails here, before the data is read
        build_run_config(family, a.preset, values)
    else:
        continuing_config(ckpt, init, a.preset, values)
    with distributed.session() as ctx:  # one process, or one rank of a torchrun launch
        data = load_train_data(_data_dir(a, ctx), a.quality_filter_z)
        max_len = data.train.max_len
        if adopt:  # a run of this family made from another family's checkpoint
            run_cfg, ckpt = get_family(family).start_from(ckpt, init, build_run_config(family, a.preset, values,
                                                                                         max_len))
        elif ckpt is not None:
            run_cfg = continuing_config(ckpt, init, a.preset, values, max_len)
        else:
            run_cfg = build_run_config(family, a.preset, values, max_len)
        check_until(run_cfg.family, until)
        run = distributed.agree_run_dir(a.out, ctx)
        distributed.say(ctx, f"run folder: {run}" + (f" (continuing from {init})" if ckpt is not None else ""))
        kw = _run_kw(a, ctx)
        tr = Trainer.continue_from(ckpt, run_cfg, data, run, **kw) if ckpt is not None else \
            Trainer(run_cfg, data, run, **kw)
        return _fit(tr, until)


def _fit(tr: Trainer, until: str | None = None) -> int:
    """Train on every rank from rank 0's weights; 0 once all ranks are done, 1 if training diverged."""
    ctx = tr.ctx
    distributed.broadcast_module(tr.model, ctx)
    try:
        path = tr.train(until)
    except TrainingDiverged as e:
        # No barrier: this rank leaves, and torchrun stops the others.
        distributed.error(ctx, str(e))
        return 1
    distributed.barrier(ctx)
    distributed.say(ctx, f"done: {path}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    return _train(a, a.family, a.init, a.until)


def cmd_train_stage1(a: argparse.Namespace) -> int:
    return _train(a, "latent_wgan", None, "stage1")


def cmd_train_stage2(a: argparse.Namespace) -> int:
    return _train(a, "latent_wgan", a.stage1_checkpoint, None)


def cmd_resume(a: argparse.Namespace) -> int:
    """Every rank loads the same checkpoint: its state does not depend on the number of processes."""
    path = newest_checkpoint(a.checkpoint) if Path(a.checkpoint).is_dir() else Path(a.checkpoint)
    ckpt = load_checkpoint(path)
    d = a.data_dir or ckpt.get("data", {}).get("data_dir")
    if not a.data_dir and (not d or not Path(d).is_dir()):
        raise FileNotFoundError(f"data directory {d!r} of this checkpoint is not available; pass --data-dir")
    with distributed.session() as ctx:
        data = load_train_data(resolve_data_dir(d))
        run = distributed.agree_run_dir(a.out, ctx)
        distributed.say(ctx, f"run folder: {run} (resuming {path})")
        tr = Trainer.from_checkpoint(path, data, run, **_run_kw(a, ctx))
        return _fit(tr)


def _add_encode(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "encode", help="write each sequence's latent vector z (families with an embedding)",
                    description="Encode every sequence of a split of DATA_DIR with the checkpoint's encoder (z = the "
                                "posterior mean for tcn_vae) into an .npz: z (N, D), L (N,), and where present the "
                                "activity / domain labels and the model's predicted activity.")
    p.add_argument("checkpoint")
    p.add_argument("data_dir", help=f"data directory, or '{EMBEDDED}'")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="split to encode")
    p.add_argument("--out", help="output .npz (default: z_{split}.npz); must not exist")
    p.set_defaults(func=cmd_encode)


def cmd_encode(a: argparse.Namespace) -> int:
    out = Path(a.out or f"z_{a.split}.npz")
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose another --out")
    model = TrajectorySampler.check_finished(load_checkpoint(a.checkpoint), a.checkpoint, build=True).eval()
    if not callable(getattr(model, "embed", None)):
        raise CliError(f"{a.checkpoint}: family {model.__class__.__name__} has no latent space to encode into")
    s = load_split(resolve_data_dir(a.data_dir), a.split, with_paths=False)
    if len(s) == 0:
        raise CliError(f"{a.data_dir}: split {a.split!r} is empty")
    X, L = torch.as_tensor(s.X), torch.as_tensor(s.L)
    arrays = {"z": model.embed(X, L).numpy(), "L": s.L}
    arrays.update({k: v for k, v in (("activity", s.activity), ("domain", s.domain)) if v is not None})
    if callable(getattr(model, "classify", None)):
        arrays["activity_pred"] = model.classify(X, L).numpy()
    save_npz(out, **arrays)
    acc = "" if "activity" not in arrays or "activity_pred" not in arrays else \
        f"; activity accuracy from z {float((arrays['activity_pred'] == arrays['activity']).mean()):.4f}"
    print(f"wrote {out}: z {arrays['z'].shape} of {len(s)} sequences ({a.split}){acc}")
    return 0


def _add_generation_cmds(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "generate", help="generate trajectories and print a summary (optionally save them)")
    p.add_argument("checkpoint")
    add_count(p, "--n", default=10, help="how many")
    p.add_argument("--distance", type=float, default=None, help="start-to-end distance in px (default: as in training)")
    add_seed(p, default=0, help="random seed")
    p.add_argument("--out", help="also write the samples to this .npz (export format)")
    _add_no_render(p)
    p.set_defaults(func=cmd_generate)
    p = add_command(sub, "export-samples", help="generate N trajectories into an .npz for evaluation")
    p.add_argument("checkpoint")
    add_count(p, "--n", required=True, help="how many")
    p.add_argument("--out", required=True, help="output .npz (must not exist)")
    p.add_argument("--distance", type=float, default=None, help="one distance in px for all samples")
    p.add_argument("--conditions-from", metavar="DATA_DIR", help="take the conditions of this data directory's "
                   f"split, in order ('{EMBEDDED}': the embedded sample)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="split of --conditions-from")
    add_seed(p, default=0, help="random seed")
    _add_no_render(p)
    p.set_defaults(func=cmd_export)


def _add_no_render(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-render", action="store_true",
                   help="keep a continuous-output family's (latent_wgan's, timegan's) paths as decoded instead of "
                        "rendering them onto its training data's event clock (whole px and ms)")
    add_candidates(p)


def cmd_generate(a: argparse.Namespace) -> int:
    if a.out:
        check_samples_path(a.out)
    sampler = TrajectorySampler.from_checkpoint(a.checkpoint, render=not a.no_render, candidates=a.candidates)
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
    check_samples_path(a.out)
    sampler = TrajectorySampler.from_checkpoint(a.checkpoint, render=not a.no_render, candidates=a.candidates)
    conditions = None
    if a.conditions_from:
        C = load_split(resolve_data_dir(a.conditions_from), a.split, with_paths=False).C
        if len(C) < a.n:
            raise ValueError(f"{a.conditions_from} split {a.split} has {len(C)} conditions, fewer than --n {a.n}")
        conditions = C[: a.n]
    g = sampler.generate(a.n, a.distance, a.seed, conditions=conditions)
    write_samples(Path(a.out), g)
    print(f"wrote {a.out}: {describe(g)}")
    return 0


def _parameter_table(model) -> list[str]:
    rows = [(name, sum(p.numel() for p in child.parameters())) for name, child in model.named_children()]
    rows.append(("total", sum(p.numel() for p in model.parameters())))
    return [f"  {name:15s} {n:>10,d}" for name, n in rows]


def cmd_inspect_model(a: argparse.Namespace) -> int:
    run = build_run_config(a.family, a.preset, _values(a))
    model = get_family(a.family).model_cls(run.arch)
    print(model)
    print(f"\nParameters ({a.family}, preset {a.preset or 'default'}):")
    print("\n".join(_parameter_table(model)))
    return 0


def cmd_inspect_checkpoint(a: argparse.Namespace) -> int:
    ckpt = load_checkpoint(a.checkpoint)
    model = build_model(ckpt, a.checkpoint)
    st = ckpt.get("trainer_state", {})
    print(f"checkpoint {a.checkpoint}")
    print(f"  family {ckpt['family']} (version {ckpt.get('family_version')}), format version {ckpt.get('version')}")
    print(f"  phases done: {', '.join(st.get('done', [])) or 'none'}; complete {st.get('complete', False)}; "
          f"phase {st.get('phase')}, iteration {st.get('iteration')}; converged at {st.get('converged_at', {})}")
    print(f"  parameters {sum(p.numel() for p in model.parameters()):,d}; data {ckpt['data'].get('data_dir')}")
    for section in ("arch", "train"):
        print(f"  {section}:")
        for k, v in ckpt.get(section, {}).items():
            print(f"    {k}: {v}")
    return 0


def cmd_quick_test(a: argparse.Namespace) -> int:
    import tempfile

    base = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="trajsynth-quick-"))
    data = load_train_data(embedded_data_dir())
    fam, n = get_family(a.family), a.iterations
    values = {k: n for k in _train_fields(fam) if k.endswith("_iterations") and k != "stage1_min_iterations"}
    values.update(log_interval=max(1, n // 3), eval_interval=n, save_interval=n)
    preset = "fast" if "fast" in fam.presets else None
    run_cfg = build_run_config(a.family, preset, values, data.train.max_len)
    t0 = time.perf_counter()
    tr = Trainer(run_cfg, data, new_run_dir(base), tensorboard=False, progress=False)
    try:
        final = tr.train()
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    g = TrajectorySampler.from_checkpoint(final).generate(200, seed=0)
    print(f"quick test passed in {time.perf_counter() - t0:.0f} s: {describe(g)}")
    print(f"run folder: {tr.run_dir}")
    return 0


def _train_fields(fam) -> set[str]:
    return set(to_dict(fam.train_cls()))
