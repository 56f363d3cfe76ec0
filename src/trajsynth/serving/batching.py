"""Micro-batching: concurrent requests share one model call, and a full queue refuses instead of growing.

One model call for 64 movements costs little more than a call for one (the networks are small and
vectorised over the batch), so under load the server answers far more requests per second by
batching them. One worker task takes the oldest job, then every job already waiting that may share
its call (same ``key``), waits at most ``max_wait_s`` for more if the batch is still small, and
runs the call in an executor so the event loop keeps accepting requests: by default one thread;
with ``concurrency`` > 1, an executor of that many worker processes (``workers.py``) runs as many
batches at once, each taking its share of what waited while the others ran. The queue is bounded:
when ``max_queue`` jobs wait, :meth:`MicroBatcher.submit` raises
:class:`Overloaded` (the server answers 503) instead of holding ever more requests in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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
    """Runs ``run(payloads) -> results`` (same length, same order) on batches of submitted jobs.

    ``executor`` makes the executor the calls run in (default: one thread); ``concurrency`` is how
    many calls may run at once (its worker count). A process executor that breaks (a worker died)
    is replaced, and the batch that broke it is run again job by job.
    """

    def __init__(self, run: Callable[[list], list], max_batch: int = 64, max_wait_s: float = 0.002,
                 max_queue: int = 1024, executor: Callable[[], Executor] | None = None, concurrency: int = 1):
        self.run, self.max_batch, self.max_wait_s, self.max_queue = run, max_batch, max_wait_s, max_queue
        self._make_executor = executor or (lambda: ThreadPoolExecutor(1, thread_name_prefix="trajsynth-model"))
        self.concurrency = concurrency
        self._queue: asyncio.Queue[_Job] | None = None
        self._held: _Job | None = None  # taken from the queue but could not join the last batch
        self._executor: Executor | None = None
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Start the worker on the running event loop (the server's startup)."""
        self._queue = asyncio.Queue(self.max_queue)
        self._executor = self._make_executor()
        self._task = asyncio.create_task(self._work(), name="trajsynth-batcher")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
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
        """Collect a batch whenever a call slot is free (so batches grow while every slot is busy)."""
        slots = asyncio.Semaphore(self.concurrency)
        while True:
            await slots.acquire()
            batch = await self._collect()
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(lambda t: self._finished(t, slots))

    def _finished(self, task: asyncio.Task, slots: asyncio.Semaphore) -> None:
        self._running.discard(task)
        slots.release()

    async def _collect(self) -> list[_Job]:
        """The next batch: the oldest job, then waiting jobs of its key (after a bounded wait if few)."""
        first, self._held = self._held or await self._queue.get(), None
        batch = [first]
        if first.key is None:
            return batch
        self._take_waiting(batch)
        if len(batch) < self._share(batch) and self._held is None and self.max_wait_s > 0:
            await asyncio.sleep(self.max_wait_s)
            self._take_waiting(batch)
        return batch

    def _share(self, batch: list[_Job]) -> int:
        """How many jobs this call takes: those waiting (``batch`` included) split evenly over the free slots.

        Without the split, clients that waited for one batch come back together and the next free
        slot takes them all: one batch at a time, however many slots there are.
        """
        total = len(batch) + self.waiting + (self._held is not None)
        free = self.concurrency - len(self._running)  # this call's slot included: its task starts after
        return max(1, min(self.max_batch, -(-total // max(1, free))))

    def _take_waiting(self, batch: list[_Job]) -> None:
        """Move jobs already queued into ``batch`` until it holds its share or a job of another key comes."""
        limit = self._share(batch)
        while len(batch) < limit and self._held is None and not self._queue.empty():
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
        executor = self._executor
        try:
            results = await loop.run_in_executor(executor, self.run, [j.payload for j in batch])
        except Exception as e:  # noqa: BLE001 - handed to the waiting requests, which answer for it
            if isinstance(e, BrokenProcessPool):
                self._replace(executor)
            if len(batch) == 1:
                _settle(batch[0], error=e)
            else:
                for job in batch:
                    await self._run([job])
            return
        for job, result in zip(batch, results, strict=True):
            _settle(job, result=result)

    def _replace(self, broken: Executor | None) -> None:
        """A fresh executor for one whose worker died (once, however many calls saw it break)."""
        if broken is not None and broken is self._executor:
            broken.shutdown(wait=False, cancel_futures=True)
            self._executor = self._make_executor()


def _settle(job: _Job, result: Any = None, error: BaseException | None = None) -> None:
    if job.future.done():  # cancelled while its call ran
        return
    if error is None:
        job.future.set_result(result)
    else:
        job.future.set_exception(error)
