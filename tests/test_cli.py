"""The command line as a user meets it: help texts, the data commands, errors, and quickstart."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import RAW_SEGMENTS, RAW_USERS

from trajsynth.cli.main import build_parser, main
from trajsynth.data.directory import load_meta

COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
DATA_COMMANDS = {"preprocess", "validate-data", "summarize", "quickstart"}


def run_module(*args, cwd, timeout=120):
    """``python -m trajsynth ARGS`` in a fresh interpreter (the environment, with the tmp cache, is inherited)."""
    return subprocess.run([sys.executable, "-m", "trajsynth", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=timeout)


# --------------------------------------------------------------------------- help


def test_command_list_is_complete():
    assert DATA_COMMANDS <= set(COMMANDS) and len(COMMANDS) >= 10


def test_module_help_exits_0_and_lists_every_command(tmp_path):
    r = run_module("--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: trajsynth")
    for name in COMMANDS:
        assert name in r.stdout, name


def test_every_subcommand_help_exits_0_in_a_fresh_interpreter(tmp_path):
    """One interpreter runs ``trajsynth CMD --help`` for every command (importing torch once, not 13 times)."""
    script = (
        "import sys\n"
        "from trajsynth.cli.main import main\n"
        f"for cmd in {COMMANDS!r}:\n"
        "    try:\n"
        "        main([cmd, '--help'])\n"
        "        code = 'returned'\n"
        "    except SystemExit as e:\n"
        "        code = e.code\n"
        "    print('EXIT', cmd, code, file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    exits = dict(line.split()[1:] for line in r.stderr.splitlines() if line.startswith("EXIT "))
    assert exits == {cmd: "0" for cmd in COMMANDS}
    assert r.stdout.count("usage: trajsynth ") == len(COMMANDS)
    assert "--long-policy" in r.stdout and "--overwrite" in r.stdout  # preprocess's options are documented


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: trajsynth {command}") and "-h, --help" in out


def test_version_and_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("trajsynth ")
    for argv in ([], ["no-such-command"], ["preprocess", "only_one_arg"], ["preprocess", "a", "b", "--long-policy",
                                                                            "truncate"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2, argv
        assert "usage:" in capsys.readouterr().err


# --------------------------------------------------------------------------- data commands


def test_preprocess_prints_counts(raw_dir, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["preprocess", str(raw_dir), str(out), "--quiet", "--workers", "1", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    meta = load_meta(out)
    c, u = meta["counts"], meta["users"]
    assert f"wrote {out}: {RAW_SEGMENTS} movements (train {c['train']}, val {c['val']}, test {c['test']}) " \
           f"from {RAW_USERS} files" in printed
    assert f"users: train {len(u['train'])}, val {len(u['val'])}, test {len(u['test'])}" in printed
    assert "dropped events:" in printed and "dropped movements:" in printed
    assert meta["config"]["seed"] == 3


def test_preprocess_options_reach_the_config(raw_dir, tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["preprocess", str(raw_dir), str(out), "--quiet", "--workers", "1", "--max-seq-len", "40",
            "--long-policy", "resample", "--min-distance", "15", "--pause-ms", "800", "--pause-policy", "drop",
            "--val-frac", "0.2", "--test-frac", "0.2", "--format", "sapimouse"]
    assert main(argv) == 0
    cfg = load_meta(out)["config"]
    assert (cfg["max_seq_len"], cfg["long_policy"], cfg["val_frac"], cfg["format"]) == (40, "resample", 0.2,
                                                                                          "sapimouse")
    assert cfg["segment"]["min_distance"] == 15 and cfg["segment"]["pause_ms"] == 800
    assert cfg["segment"]["pause_policy"] == "drop"
    assert np.load(out / "X_train.npy").shape[1] == 40
    assert "movements" in capsys.readouterr().out


def test_preprocess_cli_errors(raw_dir, tmp_path, capsys):
    assert main(["preprocess", str(raw_dir), str(tmp_path / "o"), "--quiet", "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["preprocess", str(raw_dir), str(tmp_path / "o"), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["preprocess", str(tmp_path / "nope"), str(tmp_path / "p"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["preprocess", str(raw_dir), str(tmp_path / "q"), "--quiet", "--format", "balabit",
                 "--workers", "1"]) == 2
    assert "no usable movements" in capsys.readouterr().err  # every file skipped: header is SapiMouse


def test_validate_and_summarize_default_to_the_embedded_data(capsys):
    assert main(["validate-data"]) == 0
    out = capsys.readouterr().out
    assert "embedded-" in out and out.strip().endswith("VALID")
    assert main(["summarize"]) == 0
    out = capsys.readouterr().out
    assert "train:" in out and "length-aware" in out


def test_summarize_json(small_data_dir, capsys):
    assert main(["summarize", str(small_data_dir), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    counts = load_meta(small_data_dir)["counts"]
    assert {k: v["movements"] for k, v in s["splits"].items()} == counts
    assert s["max_seq_len"] == 100 and 0 <= s["padding"]["length_aware"] < s["padding"]["random"]


def test_summarize_missing_dir(tmp_path, capsys):
    assert main(["summarize", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------- quickstart


TINY = ["ar_iterations=4", "eval_interval=4", "save_interval=4", "log_interval=4", "batch_size=16", "hidden_dim=16",
        "head_dim=16", "eval_samples=8", "eval_nll_movements=16"]  # the default family (ar_mdn), shrunk


def test_quickstart_runs_end_to_end(tmp_path, monkeypatch, capsys):
    """The main job on the embedded data, shrunk to a few iterations of a tiny model."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("TRAJSYNTH_CACHE", str(cache))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is faster, and safe on a busy machine
    try:
        argv = ["quickstart", "--out", str(tmp_path / "runs"), "--n", "8"]
        for kv in TINY:
            argv += ["--set", kv]
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "Cite: Antal" in out and "VALID" in out and "quickstart finished" in out
    assert [p.name.startswith("embedded-") for p in cache.iterdir()] == [True]  # the cache went to tmp
    (run,) = (tmp_path / "runs").iterdir()
    names = [p.name for p in run.iterdir()]
    assert "final.pt" in names
    assert any(n.startswith("generated_samples_") and n.endswith(".npz") for n in names)
    assert any(n.startswith("trajectory_comparison_") and n.endswith(".png") for n in names)
