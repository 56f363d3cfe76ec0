"""The command line as a user meets it: help texts, errors, the data commands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from trajsynth.cli.main import build_parser, main

COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "trajsynth", "--help"], capture_output=True, text=True,
                         env={**os.environ}, check=True).stdout
    for name in ("preprocess", "validate-data", "train", "export-samples", "quick-test"):
        assert name in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "usage: trajsynth " + command in capsys.readouterr().out


def test_preprocess_cli_reports_counts(raw_dir, tmp_path, capsys):
    assert main(["preprocess", str(raw_dir), str(tmp_path / "o"), "--quiet", "--seed", "3"]) == 0
    assert "120 movements" in capsys.readouterr().out
    assert main(["preprocess", str(raw_dir), str(tmp_path / "o"), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["preprocess", str(tmp_path / "nope"), str(tmp_path / "p"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_validate_and_summarize_embedded(capsys):
    assert main(["validate-data"]) == 0
    assert "VALID" in capsys.readouterr().out
    assert main(["summarize"]) == 0
    out = capsys.readouterr().out
    assert "length-aware" in out and "train" in out
