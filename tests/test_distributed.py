"""Data-parallel training under a real ``torchrun`` (two CPU processes, gloo), and resume across process counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import trajsynth
from trajsynth.cli.main import main
from trajsynth.data.train_data import load_train_data
from trajsynth.models.checkpoint import load_checkpoint
from trajsynth.models.latent_wgan.model import AUTOENCODER_PARTS
from trajsynth.models.registry import run_config
from trajsynth.training.loop import Trainer

MAX_LEN = 40
RUN_ARGS = ["--no-tensorboard", "--quiet"]
TINY = ["--family", "latent_wgan", "--preset", "tiny", "--set", "stage1_threshold=0", *RUN_ARGS]


@pytest.fixture(scope="module")
def data_dir(model_data_dir) -> Path:
    return model_data_dir


def torchrun(*args: str) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=2 --standalone ARGS`` with one thread per rank (two ranks, two cores)."""
    src = str(Path(trajsynth.__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.parametrize("world_size", ["1", "2"])
def test_a_rank_of_a_launch_ends_without_the_interpreter_teardown(world_size):
    """Under torchrun (WORLD_SIZE > 1) the command's output and exit code survive, the teardown is skipped."""
    code = ("import atexit, sys; atexit.register(lambda: print('teardown ran')); "
            "sys.argv = ['trajsynth', 'validate-data', 'no-such-dir']; "
            "from trajsynth.cli.main import entry; sys.exit(entry())")
    env = {**os.environ, "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": world_size}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "INVALID" in done.stdout  # a failed check keeps its code and its report
    assert ("teardown ran" in done.stdout) == (world_size == "1")


def only_run(base: Path) -> Path:
    (run,) = base.iterdir()  # every rank agreed on one folder
    return run


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model_state"]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], parts=None) -> bool:
    keys = [k for k in a if parts is None or k.split(".", 1)[0] in parts]
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in keys)


@pytest.fixture(scope="module")
def ddp_run(data_dir, tmp_path_factory) -> tuple[Path, str]:
    """A tiny run trained by ``torchrun -m trajsynth train`` on two processes: (run folder, stdout)."""
    out = tmp_path_factory.mktemp("ddp")
    done = torchrun("-m", "trajsynth", "train", str(data_dir), *TINY, "--out", str(out))
    return only_run(out), done.stdout


def test_ranks_average_gradients_and_train_identical_weights(data_dir, tmp_path):
    (tmp_path / "run").mkdir()
    torchrun(str(Path(__file__).with_name("ddp_worker.py")), str(data_dir), str(tmp_path))
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world_size"] == 2
    for r in (r0, r1):
        assert r["a"] == [1.5] * 3 and r["b"] == [2.0] * 2 and r["c_is_none"]  # missing grad counts as zero
        assert r["values"] == {"x": 0.5, "y": 2.0}
    # Rank 1 started from other weights: the broadcast and the averaged steps make them equal.
    assert same(torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt"))
    assert same(torch.load(tmp_path / "rank0.pt"), weights(tmp_path / "run" / "final.pt"))  # rank 0 saved them
    assert r0["rng"] == r1["rng"] and r0["noise"] != r1["noise"]  # one shared generator, different noise rows


def test_torchrun_train_writes_one_run_and_resumes_on_one_process(ddp_run, tmp_path):
    run, stdout = ddp_run
    assert stdout.count("run folder:") == 1 and stdout.count("done:") == 1  # rank 0 prints
    assert {"config.yaml", "metrics.jsonl", "stage1_iter10.pt", "stage2_iter10.pt", "final.pt"} <= {
        p.name for p in run.iterdir()}
    assert len(trajsynth.load(run / "final.pt").generate(5, seed=0).paths) == 5
    assert main(["resume", str(run / "stage2_iter10.pt"), *RUN_ARGS, "--out", str(tmp_path)]) == 0
    resumed = load_checkpoint(only_run(tmp_path) / "final.pt")
    assert resumed["trainer_state"]["complete"]
    assert same(resumed["model_state"], weights(run / "final.pt"), AUTOENCODER_PARTS)  # frozen in stage 2


def test_torchrun_resume_of_a_torchrun_checkpoint_matches_the_uninterrupted_run(ddp_run, tmp_path):
    run, _ = ddp_run
    torchrun("-m", "trajsynth", "resume", str(run / "stage1_iter10.pt"), *RUN_ARGS, "--out", str(tmp_path))
    assert same(weights(only_run(tmp_path) / "final.pt"), weights(run / "final.pt"))


def test_single_process_checkpoint_resumes_under_torchrun(data_dir, tmp_path):
    cfg = run_config("latent_wgan", "tiny", max_seq_len=MAX_LEN, stage1_threshold=0.0)
    single = Trainer(cfg, load_train_data(data_dir), tmp_path / "single", tensorboard=False, progress=False)
    single.train()
    torchrun("-m", "trajsynth", "resume", str(tmp_path / "single" / "stage1_iter10.pt"), *RUN_ARGS,
             "--out", str(tmp_path / "ddp"))
    run = only_run(tmp_path / "ddp")
    ckpt = load_checkpoint(run / "final.pt")
    assert ckpt["trainer_state"]["done"] == ["stage1", "stage2"] and ckpt["trainer_state"]["complete"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["event"] == "resumed" and records[0]["iteration"] == 10
    logged = [r["iteration"] for r in records if r.get("phase") == "stage1" and "direct" in r]
    assert logged == [15, 20]  # stage 1 went on from iteration 10, logged by rank 0 alone
    # Two ranks see twice the data per step: the continuation differs from the one-process run.
    assert not same(ckpt["model_state"], weights(tmp_path / "single" / "final.pt"), AUTOENCODER_PARTS)
