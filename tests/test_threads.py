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


def test_large_generation_batches_take_the_free_cores(clean_env):
    assert threads.inference_threads() == threads.inference_threads(threads.BATCH_ROWS - 1) == 1
    assert 1 <= threads.inference_threads(threads.BATCH_ROWS) <= threads.cores()
    clean_env.setenv(threads.ENV, "1")  # an override holds for batches too
    assert threads.inference_threads(10 * threads.BATCH_ROWS) == 1


def test_batch_calls_read_the_free_cores_once_per_interval(clean_env):
    """A 50 ms reading per call would tax a loop of batches: one reading serves FREE_CORES_TTL_S."""
    readings = []
    clean_env.setattr(threads, "free_cores", lambda window_s=0.1: readings.append(window_s) or 2)
    clean_env.setattr(threads, "_free_reading", None)
    assert threads.inference_threads(threads.BATCH_ROWS) == threads.inference_threads(4 * threads.BATCH_ROWS) == 2
    assert readings == [0.05]
    t0 = threads._free_reading[0]
    clean_env.setattr(threads, "_free_reading", (t0 - threads.FREE_CORES_TTL_S - 1, 2))  # the reading is stale
    threads.inference_threads(threads.BATCH_ROWS)
    assert len(readings) == 2


def test_a_seed_draws_the_same_movements_on_one_and_two_threads(ar_mdn_ckpt):
    """The policy picks the thread count from the machine's load, so it must not change what a seed draws."""
    import numpy as np

    from trajsynth.serving.sampler import TrajectorySampler

    sets = []
    for n_threads in (1, 2):
        sampler = TrajectorySampler.from_checkpoint(ar_mdn_ckpt)
        sampler.threads = n_threads
        sets.append(sampler.generate(threads.BATCH_ROWS, seed=5))
    a, b = sets
    assert np.array_equal(a.X, b.X) and np.array_equal(a.L, b.L)
    assert all(np.array_equal(p, q) for p, q in zip(a.paths, b.paths, strict=True))


def test_a_server_keeps_one_thread_even_for_large_requests(procedural_ckpt, clean_env):
    """Requests run side by side in a server: the batch rule of the policy would let one take every core."""
    pytest.importorskip("fastapi")
    from trajsynth.serving.server import build_app
    from trajsynth.serving.workers import load_in_worker

    sampler = build_app(procedural_ckpt).state.service.sampler
    assert sampler.threads_for(10 * threads.BATCH_ROWS) == 1
    with threads.using_threads(torch.get_num_threads()):  # a worker sets its process's count: restore ours
        assert load_in_worker(str(procedural_ckpt), True).threads_for(10 * threads.BATCH_ROWS) == 1
    clean_env.setenv(threads.ENV, "2")  # the override still holds
    assert build_app(procedural_ckpt).state.service.sampler.threads_for(1) == 2
