"""Micro-batching: concurrent requests share one model call, and a full queue refuses instead of growing.

One model call for 64 movements costs little more than a call for one (the networks are small and
vectorised over the batch), so under load the server answers far more requests per second by
batching them. One worker task takes the oldest job, then every job already waiting that may share
its call (same ``key``), waits at most ``max_wait_s`` for more if the batch is still small, and
runs the call in a thread (torch releases the GIL) so the event loop keeps accepting requests. The
queue is bounded: when ``max_queue`` jobs wait, :meth:`MicroBatcher.submit` raises
:class:`Overloaded` (the server answers 503) instead of holding ever more requests in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


class Overloaded(Exception):
    """The queue is full: the caller should try again later (HTTP 503)."""


@dataclass(eq=False)
class _Job:
    payload: Any
    key: Hashable | None  # jobs with the same key may share a call; None: always alone
    future: asyncio.Future


class MicroBatcher:
    """Runs ``run(payloads) -> results`` (same length, same order) on batches of submitted jobs."""

    def __init__(self, run: Callable[[list], list], max_batch: int = 64, max_wait_s: float = 0.002,
                 max_queue: int = 1024):
        self.run, self.max_batch, self.max_wait_s, self.max_queue = run, max_batch, max_wait_s, max_queue
        self._queue: asyncio.Queue[_Job] | None = None
        self._held: _Job | None = None  # taken from the queue but could not join the last batch
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Start the worker on the running event loop (the server's startup)."""
        self._queue = asyncio.Queue(self.max_queue)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="trajsynth-model")  # one model call at a time
        self._task = asyncio.create_task(self._work(), name="trajsynth-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._task = self._executor = None

    async def submit(self, payload: Any, key: Hashable | None = None) -> Any:
        """The result of ``payload``, computed in some batch; Overloaded when the queue is full."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        job = _Job(payload, key, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise Overloaded(f"server busy: {self.max_queue} requests are waiting; try again shortly") from None
        return await job.future

    @property
    def waiting(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    async def _work(self) -> None:
        while True:
            batch = await self._collect()
            await self._run(batch)

    async def _collect(self) -> list[_Job]:
        """The next batch: the oldest job, then waiting jobs of its key (after a bounded wait if few)."""
        first, self._held = self._held or await self._queue.get(), None
        batch = [first]
        if first.key is None:
            return batch
        self._take_waiting(batch)
        if len(batch) < self.max_batch and self._held is None and self.max_wait_s > 0:
            await asyncio.sleep(self.max_wait_s)
            self._take_waiting(batch)
        return batch

    def _take_waiting(self, batch: list[_Job]) -> None:
        """Move jobs already queued into ``batch`` until it is full or a job of another key comes."""
        while len(batch) < self.max_batch and self._held is None and not self._queue.empty():
            job = self._queue.get_nowait()
            if job.key == batch[0].key:
                batch.append(job)
            else:
                self._held = job

    async def _run(self, batch: list[_Job]) -> None:
        """One call for the batch; if it fails, each job alone, so one bad job fails only itself."""
        batch = [j for j in batch if not j.future.done()]  # the client went away: nothing to compute
        if not batch:
            return
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self.run, [j.payload for j in batch])
        except Exception as e:  # noqa: BLE001 - handed to the waiting requests, which answer for it
            if len(batch) == 1:
                _settle(batch[0], error=e)
            else:
                for job in batch:
                    await self._run([job])
            return
        for job, result in zip(batch, results, strict=True):
            _settle(job, result=result)


def _settle(job: _Job, result: Any = None, error: BaseException | None = None) -> None:
    if job.future.done():  # cancelled while its call ran
        return
    if error is None:
        job.future.set_result(result)
    else:
        job.future.set_exception(error)
