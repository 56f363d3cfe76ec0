"""The one training loop: any family's phases, with logging, evaluation, NaN guard, checkpoints and resume.

A family supplies its phases (``Family.training_cls``); this module steps them one after the other
and owns everything around the steps: the progress bar and console lines, ``metrics.jsonl`` and
TensorBoard, periodic evaluation with a hook (the search uses it), periodic and final checkpoints
written atomically (by rank 0 only under ``torchrun``), and exact resume: the logging window, the
family's optimiser and random state and torch's global RNG are all in every checkpoint.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import ConfigError, dump_yaml
from ..data.features import NormalizationParams, features_to_paths
from ..data.train_data import TrainData
from ..models.base import NonFiniteLoss, Phase, StepContext, has_embedding
from ..models.checkpoint import (
    CheckpointError,
    checkpoint_family,
    load_checkpoint,
    phases_done,
    save_checkpoint,
)
from ..models.registry import RunConfig, get_family
from ..utils.atomic import write_text
from ..utils.threads import set_threads, training_threads
from .runs import MetricsLog
from .tensorboard import TensorBoardLog


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""


def _phase_label(name: str) -> str:
    """``stage1`` → ``Stage 1`` (console lines), other names as they are."""
    return f"Stage {name[5:]}" if name.startswith("stage") and name[5:].isdigit() else name


class Trainer:
    def __init__(self, run: RunConfig, data: TrainData, run_dir: str | Path, tensorboard: bool = True,
                 progress: bool = True, log_lines: bool = True, ctx: StepContext | None = None,
                 threads: int | None = None, resume: tuple[dict, str | Path] | None = None,
                 line_prefix: str = ""):
        fam = get_family(run.family)
        max_len = getattr(run.arch, "max_seq_len", data.train.max_len)
        if data.train.max_len != max_len:
            raise ValueError(f"data has max_seq_len {data.train.max_len} but the config says {max_len}")
        self.run, self.family, self.data, self.run_dir = run, fam, data, Path(run_dir)
        self.cfg, self.ctx = run.train, ctx or StepContext()
        # The thread policy: the free cores, shared by the processes of this machine (torchrun ranks);
        # a resumed run keeps its checkpoint's count.
        record = resume[0].get("trainer_state") if resume is not None else None
        before = record.get("threads") if isinstance(record, dict) else None
        set_threads(threads or training_threads(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), resumed=before))
        self.progress, self.log_lines = progress, log_lines and self.ctx.is_main
        self.line_prefix = line_prefix  # before every console line: which of several runs at once it is
        torch.manual_seed(run.train.seed)
        self.model = fam.model_cls(run.arch)
        self.training = fam.training_cls(self.model, run.train, data, self.ctx)
        self.phases: list[Phase] = self.training.phases()
        self.state = {"phase": 0, "iteration": 0, "window": [], "done": [], "complete": False, "converged_at": {}}
        self.last_checkpoint: Path | None = None
        # Called as eval_hook(phase_name, iteration, eval_dict) after every evaluation (periodic and final);
        # the hyperparameter search uses it to report intermediate values, prune, and keep the best weights.
        self.eval_hook: Callable[[str, int, dict], None] | None = None
        if resume is not None:  # before any output: a checkpoint that cannot be resumed leaves run_dir untouched
            self._restore(*resume)
        main = self.ctx.is_main
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", enabled=main)
        self.tb = TensorBoardLog(self.run_dir / "logs", enabled=tensorboard and main)
        if main:
            write_text(self.run_dir / "config.yaml", dump_yaml(run.to_dict()))

    # ----- checkpoints ------------------------------------------------------
    def checkpoint_payload(self) -> dict:
        return {"family": self.family.name, "family_version": self.family.version, **self.run.to_dict(),
                "model_state": self.model.state_dict(),
                "trainer_state": {**self.state, "threads": torch.get_num_threads()},
                "training": self.training.state_dict(), "rng": {"torch": torch.get_rng_state()},
                "data": self.data.summary()}

    def save(self, name: str) -> Path:
        """Write ``name`` in the run folder (rank 0 only); returns its path on every rank."""
        path = self.run_dir / name
        if self.ctx.is_main:
            save_checkpoint(path, self.checkpoint_payload())
        self.last_checkpoint = path
        return path

    def load_state(self, ckpt: dict) -> None:
        """Restore weights, the family's optimiser and random state, and progress from a checkpoint dict."""
        self.model.load_state_dict(ckpt["model_state"])
        self.state.update(ckpt["trainer_state"])
        self.state["window"] = [dict(w) for w in self.state.get("window", [])]
        self.training.load_state_dict(ckpt["training"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        for phase in self.phases[: self.state["phase"]]:  # finished phases' set-up (e.g. freezing) holds on
            if phase.start:
                phase.start()

    def _restore(self, ckpt: dict, path: str | Path) -> None:
        """:meth:`load_state` from a checkpoint file's dict; a damaged one is a CheckpointError naming the file."""
        try:
            _check_progress(ckpt.get("trainer_state"), [p.name for p in self.phases])
            self.load_state(ckpt)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as e:
            detail = " ".join(str(e).split())[:200]
            raise CheckpointError(f"{path}: its training state cannot be restored ({type(e).__name__}: {detail})") \
                from None

    @classmethod
    def from_checkpoint(cls, path: str | Path, data: TrainData, run_dir: str | Path, **kw) -> Trainer:
        """Continue the run a checkpoint was written by, in a new run folder (nothing is written if it cannot)."""
        ckpt = load_checkpoint(path)
        checkpoint_family(ckpt, path)
        if "training" not in ckpt:
            raise CheckpointError(f"{path} holds no training state to resume from")
        try:
            run = RunConfig.from_dict(ckpt)
        except (ConfigError, KeyError) as e:
            raise CheckpointError(f"{path}: its stored configuration cannot be used ({e})") from None
        trainer = cls(run, data, run_dir, resume=(ckpt, path), **kw)
        trainer.metrics.write({"event": "resumed", "from": str(path), "phase": trainer.state["phase"],
                               "iteration": trainer.state["iteration"]})
        return trainer

    @classmethod
    def continue_from(cls, ckpt: dict, run: RunConfig, data: TrainData, run_dir: str | Path, **kw) -> Trainer:
        """A new run that takes over the weights of the phases done in ``ckpt`` and trains the rest.

        Only the parts those phases trained are loaded, so later parts may be shaped otherwise (a
        stage-2 search over generator sizes). A part whose shape differs is a clear error.
        """
        tr = cls(run, data, run_dir, **kw)
        done = phases_done(ckpt)
        n_done = next((i for i, p in enumerate(tr.phases) if p.name not in done), len(tr.phases))
        if n_done == 0:
            raise CheckpointError(f"the checkpoint has finished none of the phases of {run.family} "
                                  f"({', '.join(p.name for p in tr.phases)})")
        parts = {part for p in tr.phases[:n_done] for part in p.parts}
        _load_parts(tr.model, ckpt["model_state"], parts)
        tr.state.update(phase=n_done, done=[p.name for p in tr.phases[:n_done]])
        for phase in tr.phases[:n_done]:
            if phase.start:
                phase.start()
        return tr

    # ----- the loop ---------------------------------------------------------
    def train(self, until: str | None = None) -> Path:
        """Run the remaining phases (up to and including ``until``); returns the last checkpoint's path."""
        names = [p.name for p in self.phases]
        if until is not None and until not in names:
            raise ValueError(f"unknown phase {until!r}; {self.family.name} has {', '.join(names)}")
        while self.state["phase"] < len(self.phases):
            phase = self.phases[self.state["phase"]]
            self._run_phase(phase)
            if phase.name == until:
                self.tb.close()
                return self.last_checkpoint
        self.state["complete"] = True
        path = self.save("final.pt")
        self.tb.close()
        return path

    def _run_phase(self, phase: Phase) -> None:
        if phase.start:
            phase.start()
        self._loop(phase)
        self._evaluate(phase, self.state["iteration"])
        if phase.finish:
            phase.finish()
        if phase.projector and self.tb.writer and has_embedding(self.model):
            self._projector()
        self.state["done"].append(phase.name)
        self.state.update(phase=self.state["phase"] + 1, iteration=0, window=[])
        self.save(f"{phase.name}_final.pt")

    def _loop(self, phase: Phase) -> None:
        """Step, windowed logging, evaluation, periodic checkpoints.

        The logging window lives in the saved state, so a resumed run averages (and decides
        convergence on) exactly the same numbers as an uninterrupted one.
        """
        cfg, st = self.cfg, self.state
        log_every, eval_every = phase.log_every or cfg.log_interval, phase.eval_every or cfg.eval_interval
        save_every = phase.save_every or cfg.save_interval
        window, t0 = st["window"], time.perf_counter()
        bar = self._bar(phase, st["iteration"])
        while st["iteration"] < phase.total:
            window.append(self._step(phase, st["iteration"] + 1))
            st["iteration"] += 1
            bar.update(1)
            it = st["iteration"]
            if it % log_every == 0 or it == phase.total:
                # Averaged over the ranks: each saw other batches, and all must agree on convergence.
                mean = self.ctx.average({k: float(np.mean([w[k] for w in window])) for k in window[0]})
                self._log(phase, it, mean, len(window) / (time.perf_counter() - t0), bar)
                window.clear()
                t0 = time.perf_counter()
                message = phase.converged(it, mean) if phase.converged else None
                if message:
                    st["converged_at"][phase.name] = it
                    self._say(bar, message)
                    break
            if it % eval_every == 0 and it < phase.total:
                self._evaluate(phase, it)
            if it % save_every == 0 and it < phase.total:
                self.save(f"{phase.name}_latest.pt" if phase.save_latest else f"{phase.name}_iter{it}.pt")
        bar.close()

    def _step(self, phase: Phase, it: int) -> dict[str, float]:
        try:
            return {k: float(v) for k, v in phase.step().items()}
        except NonFiniteLoss as e:
            where = self.last_checkpoint or "none saved yet"
            raise TrainingDiverged(f"[{_phase_label(phase.name)}] non-finite loss at iteration {it}: {e.losses}. "
                                   f"Training stopped; last good checkpoint: {where}. Try a lower learning rate "
                                   "or a smaller grad_clip.") from None

    def _log(self, phase: Phase, it: int, mean: dict, its: float, bar) -> None:
        self._say(bar, phase.line(it, mean, its))
        self.metrics.write({"phase": phase.name, "iteration": it, "it_s": its, **mean})
        self.tb.scalars(phase.name, {f"loss_{k}": v for k, v in mean.items()}, it)

    def _evaluate(self, phase: Phase, it: int) -> dict:
        ev = phase.evaluate()
        self.metrics.write({"phase": phase.name, "iteration": it, **ev})
        self.tb.scalars(f"{phase.name}_eval", ev, it)
        if self.tb.writer and phase.preview:
            self._tb_paths(phase, it)
        if phase.on_evaluate:
            phase.on_evaluate(ev)
        if self.eval_hook is not None:
            self.eval_hook(phase.name, it, ev)
        if phase.keep_best:
            self._keep_best(phase, ev[phase.tracked])
        return ev

    def _keep_best(self, phase: Phase, value: float) -> None:
        """``<name>_best.pt`` whenever ``value`` is the phase's lowest yet (the record is resumed with the run)."""
        best = self.state.setdefault("best", {})
        if phase.name not in best or value < best[phase.name]:
            best[phase.name] = value
            last = self.last_checkpoint
            self.save(f"{phase.name}_best.pt")
            self.last_checkpoint = last

    # ----- output -----------------------------------------------------------
    def _say(self, bar, line: str) -> None:
        if self.log_lines:
            bar.write(self.line_prefix + line)

    def _bar(self, phase: Phase, start: int):
        # disable=None: the bar shows on a terminal only; logs keep just the console lines.
        show = self.progress and self.ctx.is_main
        return tqdm(total=phase.total, initial=start, desc=phase.name, unit="it",
                    disable=None if show else True, dynamic_ncols=True, leave=False)

    @torch.no_grad()
    def _tb_paths(self, phase: Phase, it: int, n: int = 12) -> None:
        """Real vs reconstructed or generated pixel paths, as a TensorBoard image."""
        from ..figures.quicklook import paths_figure

        x, x_other, c, L, L_other, label = phase.preview(n)
        params = NormalizationParams.from_dict(self.data.normalization)
        real = features_to_paths(x.numpy(), c.numpy(), L.numpy(), params)
        other = features_to_paths(x_other.numpy(), c.numpy(), L_other.numpy(), params)
        self.tb.figure(f"{phase.name}/{label}", paths_figure(real, other, n, f"iteration {it}", fake_name=label), it)

    def _projector(self) -> None:
        ds = self.data.val or self.data.train
        k = min(len(ds), 2000)
        self.model.eval()
        z = self.model.embed(ds.X[:k], ds.L[:k])
        self.tb.embedding(z, ds.C[:k, 0].numpy(), "embeddings", self.state["iteration"])


def _check_progress(st, phases: list[str]) -> None:
    """A checkpoint's ``trainer_state`` can drive the loop: right types, and phases done in order."""
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if not isinstance(st, dict):
        raise CheckpointError(f"progress record is {type(st).__name__}, not a mapping")
    phase, it, window, done = st.get("phase"), st.get("iteration"), st.get("window", []), st.get("done")
    if not (isinstance(phase, int) and not isinstance(phase, bool) and 0 <= phase <= len(phases)):
        raise CheckpointError(f"progress record: phase {phase!r} is not one of 0..{len(phases)}")
    if not (isinstance(it, int) and not isinstance(it, bool) and it >= 0):
        raise CheckpointError(f"progress record: iteration {it!r} is not a count")
    if done != phases[:phase]:
        raise CheckpointError(f"progress record: phases done {done!r} do not match phase {phase} of {phases}")
    if not (isinstance(window, list) and all(isinstance(w, dict) and all(map(number, w.values())) for w in window)
            and len({tuple(w) for w in window}) <= 1):
        raise CheckpointError("progress record: the logging window is not a list of loss records")
    if not isinstance(st.get("complete", False), bool) or not isinstance(st.get("converged_at", {}), dict):
        raise CheckpointError("progress record: 'complete' must be true/false and 'converged_at' a mapping")


def _load_parts(model: torch.nn.Module, state: dict, parts: set[str]) -> None:
    """Load the weights of the named sub-modules; say which parameter does not fit."""
    own = model.state_dict()
    wanted = {k: v for k, v in state.items() if k.split(".", 1)[0] in parts}
    missing = sorted(k for k in own if k.split(".", 1)[0] in parts and k not in wanted)
    if missing:
        raise CheckpointError(f"the checkpoint lacks weights {missing[:4]}: its architecture differs from this "
                              f"config in the parts {sorted(parts)}")
    for k, v in wanted.items():
        if k not in own or own[k].shape != v.shape:
            shape = tuple(own[k].shape) if k in own else "absent"
            raise CheckpointError(f"architecture mismatch with the checkpoint: {k} is {tuple(v.shape)} there but "
                                  f"{shape} in this config; the parts {sorted(parts)} must keep the checkpoint's "
                                  "architecture")
    model.load_state_dict(wanted, strict=False)
