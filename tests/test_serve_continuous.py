"""Continuous batching (a roll-out that requests join and leave between steps) and model worker processes.

Real components throughout: the tiny ``ar_mdn`` and ``procedural`` models of conftest, real
threads, real spawned worker processes, and a real uvicorn server on loopback where processes are
involved (a worker is killed with SIGKILL to check that the service recovers).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi", reason="the serve extra (pip install 'trajsynth[serve]') is not installed")
import httpx  # noqa: E402

import trajsynth  # noqa: E402
from trajsynth.serving.batching import MicroBatcher  # noqa: E402
from trajsynth.serving.continuous import ContinuousBatcher  # noqa: E402
from trajsynth.serving.server import build_app, running  # noqa: E402


def draw_all(sampler, run, starts, ends, gen, join_at: dict[int, slice] | None = None) -> dict[int, np.ndarray]:
    """Step ``run`` until empty, joining rows starts[sl], ends[sl] before step k for each k -> sl of ``join_at``;
    the placed paths by row index."""
    join_at = join_at or {0: slice(None)}
    by_id, out, k = {}, {}, 0
    with torch.inference_mode():
        while k == 0 or run.live or any(j >= k for j in join_at):
            if k in join_at:
                rows = np.arange(len(starts))[join_at[k]]
                ids = sampler.join(run, starts[rows], ends[rows], gen)
                by_id.update(zip(ids.tolist(), rows.tolist(), strict=True))
            if run.live and (done := run.step()) is not None:
                for i, path, n in zip(done["id"].tolist(), done["path"].numpy(), done["length"].tolist(), strict=True):
                    r = by_id[i]
                    out[r] = sampler.placed(path[:n], starts[r], ends[r])
            k += 1
    return out


def pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    d, a = rng.uniform(40, 300, n), rng.uniform(-np.pi, np.pi, n)
    starts = rng.uniform(0, 500, (n, 2)).round()
    return starts, starts + np.column_stack([d * np.cos(a), d * np.sin(a)])


def test_a_rollout_run_as_one_batch_is_exactly_the_samplers_paths(ar_mdn_ckpt):
    sampler = trajsynth.load(ar_mdn_ckpt)
    assert sampler.steps_live
    starts, ends = pairs(12)
    want = sampler.paths(starts, ends, seed=5)
    gen = torch.Generator().manual_seed(int(np.random.default_rng(5).integers(2**62)))  # as generate() seeds it
    got = draw_all(sampler, sampler.model.rollout(gen), starts, ends, gen)
    assert len(got) == 12
    for i in range(12):
        np.testing.assert_array_equal(got[i], want[i])


def test_rows_that_join_late_are_whole_movements_of_their_own(ar_mdn_ckpt):
    sampler = trajsynth.load(ar_mdn_ckpt)
    T = sampler.model.cfg.max_seq_len
    starts, ends = pairs(30, seed=1)
    gen = torch.Generator().manual_seed(3)
    got = draw_all(sampler, sampler.model.rollout(gen), starts, ends, gen,
                   join_at={0: slice(0, 10), 3: slice(10, 20), 7: slice(20, 30)})
    assert sorted(got) == list(range(30))
    for i, p in got.items():  # each starts at its start at t = 0, ends exactly on its end, on whole ms
        assert 2 <= len(p) <= T and p[0, 0] == 0 and np.all(np.diff(p[:, 0]) >= 0)
        assert np.array_equal(p[0, 1:], starts[i]) and np.array_equal(p[-1, 1:], ends[i])
        assert np.array_equal(p[:, 0], np.round(p[:, 0]))


def test_the_continuous_batcher_answers_each_request_and_refuses_other_families(ar_mdn_ckpt, procedural_ckpt):
    sampler = trajsynth.load(ar_mdn_ckpt)
    from trajsynth.serving.jobs import PathJob

    async def go():
        b = ContinuousBatcher(sampler, max_live=4)  # fewer rows than requests: the rest wait their turn
        await b.start()
        jobs = [PathJob((10.0, 20.0), (60.0 + 7 * k, 90.0)) for k in range(10)]
        out = await asyncio.gather(*(b.submit(j) for j in jobs))
        await b.stop()
        return out

    answers = asyncio.run(go())
    assert [(a["x"][0], a["y"][0], a["x"][-1], a["y"][-1]) for a in answers] == \
        [(10.0, 20.0, 60.0 + 7 * k, 90.0) for k in range(10)]
    with pytest.raises(ValueError, match="continuous batching needs one that does"):
        ContinuousBatcher(trajsynth.load(procedural_ckpt))


def test_micro_batches_are_shared_over_free_slots():
    """Requests that all came back at once are split over the free call slots, not one slot's batch."""
    calls, lock = [], threading.Lock()

    def run(payloads):
        t0 = time.perf_counter()
        time.sleep(0.2)
        with lock:
            calls.append((len(payloads), t0, time.perf_counter()))
        return payloads

    async def go():
        from concurrent.futures import ThreadPoolExecutor
        b = MicroBatcher(run, max_batch=64, max_wait_s=0.01, executor=lambda: ThreadPoolExecutor(2), concurrency=2)
        await b.start()
        out = await asyncio.gather(*(b.submit(k, "a") for k in range(8)))
        await b.stop()
        return out

    assert asyncio.run(go()) == list(range(8))
    assert sorted(c[0] for c in calls) == [4, 4]
    (_, s1, e1), (_, s2, e2) = calls
    assert s2 < e1 and s1 < e2  # the two calls ran at the same time


def test_unknown_batching_is_refused(procedural_ckpt):
    with pytest.raises(ValueError, match="batching must be one of continuous, micro"):
        build_app(procedural_ckpt, batching="eager")


async def _burst(url: str, bodies: list[dict]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        return await asyncio.gather(*(c.post("/v1/path", json=b) for b in bodies))


def _model_workers() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("trajsynth-model")]


def test_worker_processes_serve_paths_and_a_killed_worker_is_replaced(ar_mdn_ckpt):
    bodies = [{"start": [5, 5], "end": [80 + 3 * k, 40]} for k in range(16)]
    with running(build_app(ar_mdn_ckpt, workers=1)) as url:
        (worker,) = _model_workers()
        answers = asyncio.run(_burst(url, bodies))
        assert [r.status_code for r in answers] == [200] * 16
        assert [r.json()["x"][-1] for r in answers] == [80 + 3 * k for k in range(16)]
        assert len({tuple(r.json()["t_ms"]) for r in answers}) > 8  # drawn, not copies of one movement
        seeded = httpx.post(f"{url}/v1/path", json={"start": [0, 0], "end": [120, 30], "seed": 9}).json()
        assert seeded["x"] == trajsynth.load(ar_mdn_ckpt).path((0, 0), (120, 30), seed=9)[:, 1].tolist()

        os.kill(worker.pid, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # a request may fail while the new worker loads: 500, one line
            r = httpx.post(f"{url}/v1/path", json=bodies[0], timeout=60)
            if r.status_code == 200:
                break
            assert r.status_code == 500 and r.json()["detail"].startswith("internal error")
            time.sleep(0.2)
        assert r.status_code == 200
        assert [p.pid for p in _model_workers()] != [worker.pid]
    assert _model_workers() == []  # stopped with the server


def test_micro_batching_in_worker_processes(procedural_ckpt):
    bodies = [{"start": [0, 0], "end": [150, 10 * k]} for k in range(12)]
    with running(build_app(procedural_ckpt, workers=2)) as url:
        assert len(multiprocessing.active_children()) >= 2  # the pool's processes
        answers = asyncio.run(_burst(url, bodies))
        assert [r.status_code for r in answers] == [200] * 12
        assert [r.json()["y"][-1] for r in answers] == [10 * k for k in range(12)]
        seeded = httpx.post(f"{url}/v1/path", json={"start": [0, 0], "end": [120, 30], "seed": 4}).json()
        want = trajsynth.load(procedural_ckpt).path((0, 0), (120, 30), seed=4)[:, 2]
        assert seeded["y"][:-1] == np.round(want[:-1], 3).tolist() and seeded["y"][-1] == 30  # as it answers them


def test_workers_none_means_one_process_for_continuous_batching_only(ar_mdn_ckpt, procedural_ckpt):
    """The command's default (workers=None): a core of its own for stepping; a library app spawns nothing unasked."""
    service = build_app(ar_mdn_ckpt, workers=None).state.service
    assert service.settings.workers == 1 and service.stream is not None and service.stream.checkpoint is not None
    assert build_app(ar_mdn_ckpt).state.service.settings.workers == 0
    assert build_app(ar_mdn_ckpt, workers=None, batching="micro").state.service.settings.workers == 0
    assert build_app(procedural_ckpt, workers=None).state.service.settings.workers == 0
