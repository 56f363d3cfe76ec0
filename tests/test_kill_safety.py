"""A training run killed without warning (SIGKILL) at any moment, in either phase or inside a checkpoint
write, leaves only loadable checkpoints and whole metric lines, and ``trajsynth resume`` carries it on to
the same final model as a run that was never killed.

Kills land inside writes because the victims run with ``TRAJSYNTH_TEST_SLOW_WRITES``: every atomic write
then pauses between its complete temporary file and the rename, and the test kills during that pause.
The moments are random; the seed is printed (``pytest -s``) and can be fixed with ``TRAJSYNTH_TEST_KILL_SEED``.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from trajsynth.models.checkpoint import load_checkpoint, newest_checkpoint
from trajsynth.utils.atomic import SLOW_WRITES_ENV

pytestmark = pytest.mark.slow  # about 2 minutes on 2 cores (CI runs it)

ITERATIONS, SAVE = 150, 15  # per phase: 9 periodic checkpoints and a final one
SLOW_WRITE_S = 0.2
TRAIN_ARGS = ["--family", "latent_wgan", "--preset", "tiny", "--set", f"stage1_iterations={ITERATIONS}", "--set",
              f"stage2_iterations={ITERATIONS}", "--set", f"save_interval={SAVE}", "--set", "eval_interval=50",
              "--set", "log_interval=10", "--set", "stage1_threshold=0", "--no-tensorboard", "--quiet"]
TEMP_NAME = re.compile(r"^\..+\.tmp$")  # atomic writes' temporary files: .<name>.<random>.tmp
# What each episode aims at; where the kill really landed is read from the run folder afterwards.
TARGETS = ["stage1", "stage2", "write_stage1", "write_stage2"] * 3
WRITES_PER_PHASE = ITERATIONS // SAVE  # its periodic checkpoints and its final one


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "trajsynth", *args]


def _env(slow_writes: bool = False) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(SLOW_WRITES_ENV, None)
    return {**env, SLOW_WRITES_ENV: str(SLOW_WRITE_S)} if slow_writes else env


def _run_folder(out: Path) -> Path | None:
    runs = sorted(out.glob("run_*")) if out.is_dir() else []
    return runs[0] if runs else None


def _wait_until(cond, proc: subprocess.Popen, timeout: float = 120) -> bool:
    """Poll ``cond`` every 2 ms; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the training run made no progress"
        time.sleep(0.002)
    return True


def _moment(target: str, out: Path, rng: random.Random):
    """The condition to wait for before killing, and how long to wait after it."""
    run = lambda: _run_folder(out)  # noqa: E731
    if target == "stage1":  # some stage-1 checkpoint exists, so there is something to resume
        return lambda: run() is not None and any(run().glob("stage1_iter*.pt")), rng.uniform(0, 0.5)
    if target == "stage2":
        return lambda: run() is not None and (run() / "stage1_final.pt").exists(), rng.uniform(0, 0.3)
    first = 1 if target == "write_stage1" else WRITES_PER_PHASE + 1  # stage 2's first write follows stage 1's
    k = rng.randint(first + 1, first + WRITES_PER_PHASE - 1)  # the k-th checkpoint write overall (not the 1st)
    seen: set[str] = set()

    def in_kth_write() -> bool:
        if run() is not None:
            seen.update(p.name for p in run().glob(".*.pt.*.tmp"))
        return len(seen) >= k

    return in_kth_write, rng.uniform(0, SLOW_WRITE_S / 3)  # well inside the pause before the rename


def _kill_at(target: str, out: Path, data_dir: Path, rng: random.Random) -> Path | None:
    """Start a training run, SIGKILL it at the target moment; its run folder, or None if it ended first."""
    victim = subprocess.Popen(_cli("train", str(data_dir), *TRAIN_ARGS, "--out", str(out)),
                              env=_env(slow_writes=target.startswith("write")),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cond, delay = _moment(target, out, rng)
    reached = _wait_until(cond, victim)
    time.sleep(delay)
    if not reached or victim.poll() is not None:
        victim.wait()
        return None
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    return _run_folder(out)


def _where(run: Path) -> tuple[str, bool]:
    """(phase the kill landed in, whether it landed inside a checkpoint write), read from the folder."""
    in_write = any(p.name.endswith(".tmp") and ".pt." in p.name for p in run.iterdir())
    return ("stage2" if (run / "stage1_final.pt").exists() else "stage1"), in_write


def _name_order(name: str) -> tuple[int, int, int]:
    """Progress told by a checkpoint's name (independent of the trainer state that newest_checkpoint reads)."""
    if name == "final.pt":
        return (2, 0, 1)
    stage, rest = re.fullmatch(r"stage(\d)_(\w+)\.pt", name).groups()
    return (int(stage), 0, 0) if rest == "final" else (int(stage) - 1, int(rest[4:]), 0)


def _check_leftovers(run: Path) -> bool:
    """Every file loads or is whole, or is a temporary file no reader looks at; True if metrics end cut short."""
    names = {p.name for p in run.iterdir()}
    checkpoints = sorted(n for n in names if n.endswith(".pt"))
    assert checkpoints, "the kill came before any checkpoint"
    for n in checkpoints:
        load_checkpoint(run / n)  # raises on an unreadable file
    odd = names - set(checkpoints) - {"config.yaml", "metrics.jsonl"}
    assert all(TEMP_NAME.match(n) for n in odd), odd
    assert not [p for p in run.glob("*.pt") if TEMP_NAME.match(p.name)], "a temporary file looks like a checkpoint"
    text = (run / "metrics.jsonl").read_text()
    lines = text.split("\n")
    for line in lines[:-1]:
        json.loads(line)  # every newline-terminated line is whole
    assert newest_checkpoint(run).name == max(checkpoints, key=_name_order)
    return lines[-1] != ""  # a last line cut short inside its one write call


def _resume_to_final(source: Path, out: Path) -> Path:
    r = subprocess.run(_cli("resume", str(source), "--out", str(out), "--no-tensorboard", "--quiet"),
                       env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    final = Path(re.search(r"^done: (.+)$", r.stdout, re.M).group(1))
    assert final.name == "final.pt"
    return final


def _weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(path)
    assert ckpt["trainer_state"]["complete"] and ckpt["trainer_state"]["done"] == ["stage1", "stage2"]
    return ckpt["model_state"]


def test_killed_runs_leave_loadable_checkpoints_and_resume_to_the_same_model(model_data_dir, tmp_path):
    data_dir = model_data_dir  # read only: every run writes into tmp_path
    seed = int(os.environ.get("TRAJSYNTH_TEST_KILL_SEED", time.time_ns() % 2**31))
    rng, t0 = random.Random(seed), time.perf_counter()
    ref = subprocess.run(_cli("train", str(data_dir), *TRAIN_ARGS, "--out", str(tmp_path / "ref")), env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-2000:]
    expected = _weights(_run_folder(tmp_path / "ref") / "final.pt")
    landed, cut_lines = Counter(), 0
    for i, target in enumerate(TARGETS):
        run = _kill_at(target, tmp_path / f"kill{i}", data_dir, rng)
        if run is None:  # the run finished before the moment came (a very fast machine): not a kill
            continue
        phase, in_write = _where(run)
        landed[phase] += 1
        landed[f"write_{phase}"] += in_write
        cut_lines += _check_leftovers(run)
        source = run if i % 2 else newest_checkpoint(run)  # both forms of `trajsynth resume`
        got = _weights(_resume_to_final(source, tmp_path / f"resumed{i}"))
        assert got.keys() == expected.keys()
        assert all(torch.equal(got[k], expected[k]) for k in expected), f"kill {i}: resumed model differs"
    kills = landed["stage1"] + landed["stage2"]
    print(f"\n{kills} kills: stage1 {landed['stage1']}, stage2 {landed['stage2']}; inside a checkpoint write "
          f"{landed['write_stage1'] + landed['write_stage2']} (stage1 {landed['write_stage1']}, stage2 "
          f"{landed['write_stage2']}); metrics cut short {cut_lines}; {time.perf_counter() - t0:.0f} s, seed {seed}")
    assert kills >= 10 and landed["stage1"] >= 3 and landed["stage2"] >= 3
    assert landed["write_stage1"] >= 1 and landed["write_stage2"] >= 1
