"""Every bad input a user met, run end to end: one line in the project's words, exit status 2, no traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trajsynth.cli.errors import EXPECTED
from trajsynth.cli.main import build_parser, main
from trajsynth.cli.options import AtLeast
from trajsynth.config import ConfigError
from trajsynth.data.embedded import embedded_data_dir, resolve_data_dir
from trajsynth.evaluation.sources import evaluation_inputs
from trajsynth.models.checkpoint import CheckpointError, load_checkpoint
from trajsynth.utils.checks import WrongTypeError


@pytest.fixture(scope="module")
def final(tmp_path_factory) -> Path:
    """A fitted procedural model (seconds) on the embedded data, trained through the command line."""
    base = tmp_path_factory.mktemp("errors")
    assert main(["train", "embedded", "--family", "procedural", "--preset", "tiny", "--no-tensorboard", "--quiet",
                 "--out", str(base)]) == 0
    return next(base.glob("run_*/final.pt"))


def err_line(capsys) -> str:
    """The one line a failing command printed (nothing on stdout, exactly one line on stderr)."""
    out, err = capsys.readouterr()
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err.strip()


def parse_error(argv, capsys) -> str:
    """The one-line message of a value that argparse refuses (exit status 2)."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return err_line(capsys)


def run_module(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trajsynth", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)


# --------------------------------------------------------------------------- 1. files that are not checkpoints


def test_files_that_are_not_checkpoints(final, tmp_path, capsys):
    text, empty, cut = tmp_path / "notes.pt", tmp_path / "empty.pt", tmp_path / "cut.pt"
    text.write_text("hello, not a model\n")
    empty.write_bytes(b"")
    cut.write_bytes(final.read_bytes()[:1000])
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    expected = {text: "not a PyTorch file", empty: "empty file", cut: "truncated PyTorch file",
                tmp_path / "other.pt": "a PyTorch file without the 'trajsynth-checkpoint' marker"}
    for path, why in expected.items():
        assert main(["generate", str(path)]) == 2
        assert err_line(capsys) == f"error: {path} is not a trajsynth checkpoint ({why})"
        with pytest.raises(CheckpointError, match="is not a trajsynth checkpoint"):
            load_checkpoint(path)


def test_a_checkpoint_error_has_no_traceback_in_a_fresh_process(tmp_path):
    (tmp_path / "notes.pt").write_text("hello\n")
    r = run_module("inspect-checkpoint", "notes.pt", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "error: notes.pt is not a trajsynth checkpoint (not a PyTorch file)\n"


# --------------------------------------------------------------------------- 2. files that are not samples


def test_evaluate_samples_that_are_not_an_npz(final, tmp_path, capsys):
    text, objects = tmp_path / "text.npz", tmp_path / "objects.npz"
    text.write_text("hello\n")
    np.savez(objects, **{k: np.array([{"a": 1}], dtype=object) for k in ("X", "L", "C", "distance_px",
                                                                            "paths_points", "paths_offsets")})
    out = str(tmp_path / "report")
    assert main(["evaluate", "--samples", str(text), "embedded", "--n", "10", "--out", out]) == 2
    assert err_line(capsys).startswith(f"error: {text} is not a samples file (not an .npz archive; expected the "
                                       "export-samples format: an .npz with X, L, C, distance_px")
    assert main(["evaluate", "--samples", str(objects), "embedded", "--n", "10", "--out", out]) == 2
    assert err_line(capsys) == f"error: {objects} is not a samples file (its arrays hold Python objects, not numbers)"
    assert not Path(out).exists()


# --------------------------------------------------------------------------- 3. counts


COUNT_CASES = [
    (["evaluate", "CKPT", "DATA", "--n", "-5"], "--n must be >= 1, got -5"),
    (["evaluate", "CKPT", "DATA", "--n", "0"], "--n must be >= 1, got 0"),
    (["evaluate", "CKPT", "DATA", "--repeats", "0"], "--repeats must be >= 1, got 0"),
    (["evaluate", "CKPT", "DATA", "--workers", "0"], "--workers must be >= 1, got 0"),
    (["evaluate", "CKPT", "DATA", "--n", "2.5"], "--n must be a whole number, got '2.5'"),
    (["visualize", "CKPT", "DATA", "--n", "-1"], "--n must be >= 1, got -1"),
    (["generate", "CKPT", "--n", "0"], "--n must be >= 1, got 0"),
    (["generate", "CKPT", "--seed", "-1"], "--seed must be >= 0, got -1"),
    (["export-samples", "CKPT", "--n", "-3", "--out", "x.npz"], "--n must be >= 1, got -3"),
    (["quickstart", "--n", "0"], "--n must be >= 1, got 0"),
    (["quick-test", "--iterations", "0"], "--iterations must be >= 1, got 0"),
    (["benchmark", "--dataset", "sines", "--runs", "0"], "--runs must be >= 1, got 0"),
    (["benchmark", "--dataset", "sines", "--jobs", "0"], "--jobs must be >= 1, got 0"),
    (["preprocess", "RAW", "OUT", "--workers", "0"], "--workers must be >= 1, got 0"),
    (["preprocess", "RAW", "OUT", "--max-seq-len", "1"], "--max-seq-len must be >= 2, got 1"),
    (["tune", "--n-trials", "0"], "--n-trials must be >= 1, got 0"),
    (["tune", "--eval-samples", "-1"], "--eval-samples must be >= 1, got -1"),
    (["tune", "--disc-iterations", "0"], "--disc-iterations must be >= 1, got 0"),
    (["tune", "--heartbeat", "0"], "--heartbeat must be >= 1, got 0"),
]


@pytest.mark.parametrize(("argv", "message"), COUNT_CASES, ids=[" ".join(a) for a, _ in COUNT_CASES])
def test_counts_are_checked_while_parsing(argv, message, capsys):
    assert parse_error(argv, capsys) == f"trajsynth {argv[0]}: error: {message}"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    return build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001


def test_every_integer_option_is_a_checked_count():
    """No command takes a plain ``type=int`` option: each integer goes through AtLeast (a count or a seed)."""
    counts = 0
    for name, p in _subparsers().items():
        for action in p._actions:  # noqa: SLF001
            assert action.type is not int, f"{name} {action.option_strings} is a plain int"
            counts += isinstance(action, AtLeast)
    assert counts >= 20


# --------------------------------------------------------------------------- 4. a folder that is not a data dir


def test_conditions_from_a_folder_that_is_not_a_data_directory(final, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "s.npz"
    argv = ["export-samples", str(final), "--n", "5", "--out", str(out), "--conditions-from"]
    assert main([*argv, str(tmp_path / "empty")]) == 2
    assert err_line(capsys) == (f"error: {tmp_path / 'empty'} is not a data directory: X_test.npy, C_test.npy, "
                                "L_test.npy are missing (make one with `trajsynth preprocess RAW_DIR OUT_DIR`)")
    assert main([*argv, str(tmp_path / "nowhere")]) == 2
    assert err_line(capsys) == f"error: data directory {tmp_path / 'nowhere'} does not exist"
    assert not out.exists()


# --------------------------------------------------------------------------- 5. raw logs with nothing usable


def test_preprocess_of_garbage_names_counts_examples_and_the_header(tmp_path, capsys):
    raw = tmp_path / "raw" / "user1"
    raw.mkdir(parents=True)
    (raw / "a.csv").write_text("foo,bar\n1,2\n")
    (raw / "b.csv").write_text("client timestamp,button,state,x,y\n" + "abc,Left,Pressed,1,2\n1,2,3\n" * 4)
    assert main(["preprocess", str(tmp_path / "raw"), str(tmp_path / "out"), "--quiet", "--workers", "1"]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert lines[0] == f"error: no usable movements found in {tmp_path / 'raw'}: 2 files (1 skipped whole), 0 rows read"
    assert lines[1] == "  skipped rows: non-numeric timestamp or position 4, wrong number of fields 4"
    assert lines[2].startswith(f"  {raw / 'a.csv'}: unknown header 'foo,bar'; expected one of client timestamp,")
    assert lines[3:] == [f"  {raw / 'b.csv'}:2: non-numeric timestamp or position",
                         f"  {raw / 'b.csv'}:3: wrong number of fields (3 instead of 5)",
                         f"  {raw / 'b.csv'}:4: non-numeric timestamp or position",
                         f"  {raw / 'b.csv'}:5: wrong number of fields (3 instead of 5)"]  # five examples in all
    assert "Traceback" not in err and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- 7. unknown --set keys


SET_CASES = [
    ["train", "embedded"], ["train-stage1"], ["inspect-model"], ["quickstart"],
    ["benchmark", "--dataset", "sines", "--quick"], ["tune", "--n-trials", "1"],
]


@pytest.mark.parametrize("argv", SET_CASES, ids=[a[0] for a in SET_CASES])
def test_an_unknown_set_key_is_one_line_with_the_closest_names(argv, tmp_path, capsys):
    if argv[0] == "tune":
        pytest.importorskip("optuna")
    out = tmp_path / "out"
    extra = [] if argv[0] in ("inspect-model", "benchmark") else ["--out", str(out)]
    if argv[0] in ("train", "inspect-model", "quickstart"):  # the default family, ar_mdn
        assert main([*argv, *extra, "--set", "ar_iteration=5"]) == 2
        assert err_line(capsys) == ("error: unknown config key 'ar_iteration' (did you mean 'ar_iterations' or "
                                    "'adv_iterations' or 'critic_iterations'?) for family ar_mdn")
    else:  # the two-stage model's commands, and benchmark and tune, whose default it is
        assert main([*argv, *extra, "--set", "stage1_iteration=5"]) == 2
        assert err_line(capsys) == ("error: unknown config key 'stage1_iteration' (did you mean "
                                    "'stage1_iterations' or 'stage2_iterations' or 'stage1_min_iterations'?) "
                                    "for family latent_wgan")
    assert not out.exists()  # nothing was started


# --------------------------------------------------------------------------- 8. the word 'embedded'


def test_embedded_is_a_data_directory_everywhere(final, tmp_path, capsys):
    assert resolve_data_dir("embedded") == resolve_data_dir(None) == embedded_data_dir()
    assert main(["validate-data", "embedded"]) == 0 and capsys.readouterr().out.strip().endswith("VALID")
    assert main(["summarize", "embedded", "--json"]) == 0 and '"splits"' in capsys.readouterr().out
    out = tmp_path / "s.npz"
    assert main(["export-samples", str(final), "--n", "5", "--out", str(out), "--conditions-from", "embedded"]) == 0
    assert np.load(out)["C"].tolist() == np.load(embedded_data_dir() / "C_test.npy")[:5].tolist()
    e = evaluation_inputs("embedded", "test", 20, checkpoint=final)  # what evaluate and visualize read
    assert len(e.real) == len(e.fake) == 20
    assert main(["visualize", str(final), "embedded", "--n", "20", "--out", str(tmp_path / "figs")]) == 0
    assert len(list((tmp_path / "figs").glob("*.png"))) >= 5


def test_tune_reads_embedded_data(tmp_path):
    pytest.importorskip("optuna")
    from trajsynth.tuning import OptunaConfig, StudyManager

    data = StudyManager(OptunaConfig(data_dir="embedded", out_dir=str(tmp_path))).load_data()
    assert Path(data.data_dir) == embedded_data_dir()


# --------------------------------------------------------------------------- 9. help texts


def test_every_option_with_a_default_shows_it_in_help():
    for name, p in _subparsers().items():
        text = " ".join(p.format_help().split())
        for action in p._actions:  # noqa: SLF001
            d = action.default
            if not action.option_strings or d is None or d is False or d == [] or d is argparse.SUPPRESS:
                continue
            shown = p._get_formatter()._expand_help(action)  # noqa: SLF001 - the text --help prints for it
            assert "default" in shown, f"{name} {action.option_strings[0]}: {shown!r}"
            assert " ".join(shown.split()) in text
    quickstart = " ".join(_subparsers()["quickstart"].format_help().split())
    assert "trajectories to generate (default: 500)" in quickstart
    assert "base folder of the run (default: checkpoints)" in quickstart
    generate = " ".join(_subparsers()["generate"].format_help().split())
    assert "how many (default: 10)" in generate and "random seed (default: 0)" in generate


def test_evaluate_usage_shows_its_forms():
    for cmd in ("evaluate", "visualize"):
        usage = _subparsers()[cmd].format_usage()
        ceiling = "       trajsynth evaluate --reconstructions CKPT DATA_DIR [options]\n" if cmd == "evaluate" else ""
        assert usage == (f"usage: trajsynth {cmd} CKPT DATA_DIR [options]\n"
                         f"       trajsynth {cmd} --samples FILE.npz DATA_DIR [options]\n{ceiling}")


# --------------------------------------------------------------------------- main(): what is expected, what is a bug


def test_expected_errors_are_ours_and_bugs_are_not():
    assert issubclass(ConfigError, EXPECTED) and issubclass(CheckpointError, EXPECTED)
    assert issubclass(WrongTypeError, EXPECTED) and issubclass(WrongTypeError, TypeError)
    for bug in (TypeError, KeyError, AttributeError, RuntimeError, IndexError):
        assert not issubclass(bug, EXPECTED), bug


def _unwritable(tmp_path: Path) -> Path:
    """A folder this process cannot write into (a read-only folder; as root, /sys, which refuses even root)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    try:
        (Path("/sys") / "trajsynth-probe").mkdir()
    except PermissionError:
        return Path("/sys")
    except OSError:
        pass
    pytest.skip("no folder refuses writes here")


def test_unwritable_output_folders(final, tmp_path, capsys):
    folder = _unwritable(tmp_path)
    for argv in (["train", "embedded", "--family", "procedural", "--preset", "tiny", "--quiet", "--out",
                  str(folder / "runs")],
                 ["generate", str(final), "--n", "2", "--out", str(folder / "s.npz")],
                 ["evaluate", str(final), "embedded", "--n", "10", "--out", str(folder / "report")]):
        assert main(argv) == 2
        assert capsys.readouterr().err.splitlines()[-1] == f"error: cannot write to {folder}: permission denied"


def test_an_output_below_a_file(final, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "embedded", "--family", "procedural", "--preset", "tiny", "--quiet", "--out",
                 str(blocker / "runs")]) == 2
    assert err_line(capsys) == f"error: cannot write to {blocker / 'runs'}: {blocker} is a file, not a folder"
    assert main(["generate", str(final), "--out", str(blocker / "s.npz")]) == 2
    assert err_line(capsys) == f"error: cannot write {blocker / 's.npz'}: {blocker} is a file, not a folder"


def test_a_reader_that_stops_early_is_not_an_error(tmp_path):
    """``trajsynth summarize | head -1``: the closed pipe ends the command quietly (status 141, as for SIGPIPE)."""
    p = subprocess.Popen([sys.executable, "-m", "trajsynth", "summarize", "embedded", "--json"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    p.stdout.close()  # the reader is gone before the first line
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and err == ""
