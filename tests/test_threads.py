"""The thread policy: one thread for inference, the free cores for training, overrides in order."""

from __future__ import annotations

import pytest
import torch

from trajsynth.cli.main import main
from trajsynth.utils import threads


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return monkeypatch


def test_policy_and_overrides(clean_env):
    assert threads.inference_threads() == 1
    assert 1 <= threads.free_cores() <= threads.cores()
    assert 1 <= threads.training_threads() <= threads.cores()
    assert threads.training_threads(workers=10_000) == 1  # never below one thread
    clean_env.setenv("OMP_NUM_THREADS", "3")
    assert threads.inference_threads() == threads.training_threads() == 3
    clean_env.setenv(threads.ENV, "2")  # ours wins over OpenMP's
    assert threads.inference_threads() == threads.training_threads(workers=4) == 2
    clean_env.setenv(threads.ENV, "two")
    with pytest.raises(ValueError, match="TRAJSYNTH_THREADS='two' must be a whole number"):
        threads.training_threads()
    clean_env.setenv(threads.ENV, "0")
    with pytest.raises(ValueError, match="must be >= 1"):
        threads.inference_threads()


def test_using_threads_restores():
    before = torch.get_num_threads()
    with threads.using_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_cli_threads_option_is_checked_and_scoped(clean_env, capsys):
    with pytest.raises(SystemExit):
        main(["summarize", "--threads", "0"])
    assert "--threads must be >= 1, got 0" in capsys.readouterr().err
    assert main(["summarize", "--threads", "1"]) == 0
    assert threads.ENV not in __import__("os").environ  # the option does not leak past the call
