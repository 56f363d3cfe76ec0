"""Model calls in worker processes, so that several batches run at once on several cores.

Drawing a movement is a loop of small steps whose cost is mostly Python, so the model holds the
GIL nearly all the time: a second model *thread* in the server process gains nothing (measured
on 2 cores: 257 requests/s and a p99 of 186 ms against 415 and ~100 with one thread). Worker
*processes* each hold their own copy of the model and their own GIL; the server process keeps
HTTP, validation and batching. Each worker loads the checkpoint itself (``spawn``: nothing of
the parent's torch state is inherited), uses one intra-op thread (the inference policy of
``utils/threads.py``), and draws unseeded movements from its own fresh entropy (the sampler's
``seed=None``), so two workers never repeat each other.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from ..utils.threads import inference_threads, set_threads
from .jobs import run_jobs
from .sampler import TrajectorySampler

_sampler: TrajectorySampler | None = None  # the worker process's model, loaded by _load


def load_in_worker(checkpoint: str, render: bool) -> TrajectorySampler:
    """A worker process's model: one thread, the checkpoint, and a first call (its allocations) before any request."""
    threads = inference_threads()  # a pool of workers shares the cores: even a large job keeps one thread
    set_threads(threads)
    sampler = TrajectorySampler.from_checkpoint(checkpoint, render=render, threads=threads)
    sampler.path(*sampler.warm_up_pair)
    return sampler


def _load(checkpoint: str, render: bool) -> None:
    global _sampler
    _sampler = load_in_worker(checkpoint, render)


def run_in_worker(jobs: list) -> list[dict]:
    """:func:`run_jobs` on the worker's own model (what the batcher sends to the pool)."""
    if _sampler is None:
        raise RuntimeError("run_in_worker runs in a model worker process only")
    return run_jobs(_sampler, jobs)


def process_pool(checkpoint: str | Path, workers: int, render: bool = True) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes that each load ``checkpoint`` when they start."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_load, initargs=(str(checkpoint), render))


def pool_factory(checkpoint: str | Path, workers: int, render: bool = True):
    """What :class:`MicroBatcher` calls for a (fresh) executor."""
    return partial(process_pool, checkpoint, workers, render)
