"""Outputs that cannot be written: a one-line ``error: cannot write PATH: REASON`` (exit 2) and nothing half-written.

How each failure is made real, without mocks:

* a read-only folder: mode 0o555; a process running as root ignores modes, so there the folder gets the
  immutable attribute (``chattr +i``), which stops root too (skipped where the file system lacks it);
* a file where a folder should be (``--out somefile/sub``): works for every user;
* a full disk: a 16 KiB or 800 KiB tmpfs mounted in a private user and mount namespace (``unshare -Urm``),
  so no root is needed; skipped where unprivileged namespaces are disabled;
* a write that fails half-way on any Linux: a file-size limit (``RLIMIT_FSIZE``) on the process, whose
  writes then fail with EFBIG ("File too large") after the first bytes;
* ENOSPC on the metrics log: ``/dev/full``, where every write fails with "No space left on device".
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import synthetic_data_dir

from trajsynth.data.train_data import load_train_data
from trajsynth.models.checkpoint import load_checkpoint
from trajsynth.models.registry import run_config
from trajsynth.training.loop import Trainer
from trajsynth.training.runs import MetricsLog
from trajsynth.utils.atomic import WriteError, write_bytes

RUN = r"run_\d{8}_\d{6}(_\d+)?"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return synthetic_data_dir(tmp_path_factory.mktemp("outerr") / "data", 200, 2, 40)


@pytest.fixture(scope="module")
def model_ckpt(data_dir, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("outerr_run")
    cfg = run_config("latent_wgan", "tiny", max_seq_len=40, stage1_threshold=0.0)
    return Trainer(cfg, load_train_data(data_dir), run, tensorboard=False, progress=False).train()


def trajsynth(*args: str, limit_file_size: int | None = None) -> subprocess.CompletedProcess:
    """``python -m trajsynth ARGS`` in a fresh process, optionally with a file-size limit in bytes."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "trajsynth", *args], capture_output=True, text=True, env=env,
                          timeout=300, preexec_fn=limit if limit_file_size else None)


def one_line_error(r: subprocess.CompletedProcess, pattern: str) -> re.Match:
    """The run failed with exit 2 and its whole stderr is the one line ``pattern`` (a regex)."""
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.splitlines()
    match = re.fullmatch(pattern, lines[0]) if len(lines) == 1 else None
    assert match, r.stderr[-2000:]
    return match


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made unwritable for this process: mode 0o555, or for root the immutable attribute."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        undo = lambda: folder.chmod(0o755)  # noqa: E731
    else:
        made = shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
        if not made or made.returncode != 0:
            pytest.skip("running as root, whom a folder's mode does not stop, and chattr +i is not available here")
        undo = lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)  # noqa: E731
    try:
        with contextlib.suppress(OSError):
            (folder / "probe").touch()
            (folder / "probe").unlink()
            pytest.skip(f"{folder} stays writable for this user")
        yield folder
    finally:
        undo()


# --------------------------------------------------------------------------- unwritable folders


def test_train_below_a_file_names_the_path(data_dir, tmp_path):
    (tmp_path / "somefile").write_text("not a folder")
    r = trajsynth("train", str(data_dir), "--preset", "tiny", "--out", str(tmp_path / "somefile" / "sub"))
    one_line_error(r, rf"error: cannot write to {re.escape(str(tmp_path))}/somefile/sub: "
                      rf"{re.escape(str(tmp_path))}/somefile is a file, not a folder")
    assert (tmp_path / "somefile").read_text() == "not a folder" and sorted(os.listdir(tmp_path)) == ["somefile"]


def test_train_into_a_read_only_folder(data_dir, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro):
        r = trajsynth("train", str(data_dir), "--preset", "tiny", "--out", str(ro))
    one_line_error(r, rf"error: cannot write to {re.escape(str(ro))}: permission denied")
    assert os.listdir(ro) == []


def test_export_into_a_read_only_folder(model_ckpt, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro):
        r = trajsynth("export-samples", str(model_ckpt), "--n", "50", "--out", str(ro / "samples.npz"))
    one_line_error(r, rf"error: cannot write to {re.escape(str(ro))}: permission denied")
    assert os.listdir(ro) == []


def test_a_write_that_fails_half_way_leaves_no_temporary_file(model_ckpt, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    r = trajsynth("export-samples", str(model_ckpt), "--n", "200", "--out", str(out / "samples.npz"),
                  limit_file_size=4096)
    one_line_error(r, rf"error: cannot write {re.escape(str(out))}/samples.npz: File too large")
    assert os.listdir(out) == []  # the partly written temporary file is gone


# --------------------------------------------------------------------------- a full disk


def on_small_tmpfs(size: str, mount: Path, commands: str) -> subprocess.CompletedProcess:
    """Run shell ``commands`` with a fresh tmpfs of ``size`` at ``mount``, in a private user+mount namespace."""
    probe = shutil.which("unshare") and subprocess.run(["unshare", "-Urm", "true"], capture_output=True)
    if not probe or probe.returncode != 0:
        pytest.skip("unprivileged user namespaces are unavailable (unshare -Urm), so no small tmpfs can be mounted")
    mount.mkdir()
    script = f'mount -t tmpfs -o size={size} tmpfs "{mount}" || exit 99\n{commands}'
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    r = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 99, f"mount failed: {r.stderr}"
    return r


def test_export_onto_a_full_disk(model_ckpt, tmp_path):
    disk, seen = tmp_path / "disk", tmp_path / "seen.txt"
    r = on_small_tmpfs("16k", disk, f'{sys.executable} -m trajsynth export-samples "{model_ckpt}" --n 500 '
                                    f'--out "{disk}/samples.npz"; rc=$?; ls -A "{disk}" > "{seen}"; exit $rc')
    one_line_error(r, rf"error: cannot write {re.escape(str(disk))}/samples.npz: No space left on device")
    assert seen.read_text() == ""  # nothing on the full disk, not even a temporary file


def test_training_onto_a_full_disk_keeps_only_whole_checkpoints(data_dir, tmp_path):
    disk, copy = tmp_path / "disk", tmp_path / "copy"
    r = on_small_tmpfs("800k", disk, f'{sys.executable} -m trajsynth train "{data_dir}" --family latent_wgan '
                                     '--preset tiny --quiet '
                                     f'--out "{disk}"; rc=$?; cp -a "{disk}" "{copy}"; exit $rc')
    m = one_line_error(r, rf"error: cannot write {re.escape(str(disk))}/{RUN}/(?P<name>\w+\.pt): "
                          "No space left on device")
    run = next(copy.glob("run_*"))
    checkpoints = sorted(run.glob("*.pt"))
    assert checkpoints and m["name"] not in {p.name for p in checkpoints}
    for p in checkpoints:
        load_checkpoint(p)
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    for ln in (run / "metrics.jsonl").read_text().splitlines():
        json.loads(ln)


TB_ONTO_FULL_DISK = """
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from trajsynth.training.tensorboard import TensorBoardLog
from trajsynth.utils.atomic import WriteError
log = TensorBoardLog(sys.argv[1])
fig, ax = plt.subplots()
ax.imshow(np.random.default_rng(0).random((200, 200)))  # a PNG far larger than the disk
try:
    log.figure("noise", fig, 0)
    log.flush()
    log.scalars("x", {"a": 1.0}, 1)
except WriteError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
"""


def test_tensorboard_onto_a_full_disk_is_one_line(tmp_path):
    """TensorBoard's writer thread fails on its own; its traceback is left out, the error named once."""
    disk, script = tmp_path / "disk", tmp_path / "tb.py"
    script.write_text(TB_ONTO_FULL_DISK)
    r = on_small_tmpfs("16k", disk, f'{sys.executable} "{script}" "{disk}/logs"')
    one_line_error(r, rf"error: cannot write {re.escape(str(disk))}/logs: No space left on device")


def test_metrics_log_on_a_full_device_says_so(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.symlink_to("/dev/full")
    with pytest.raises(WriteError) as e:
        MetricsLog(log).write({"iteration": 1})
    assert str(e.value) == f"cannot write {log}: No space left on device"


def test_atomic_write_below_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(WriteError) as e:
        write_bytes(tmp_path / "f" / "out.bin", b"data")
    assert str(e.value) == f"cannot write {tmp_path}/f/out.bin: Not a directory"
