"""Continuous batching: path requests join a running roll-out between steps and leave when drawn.

With micro-batching (``batching.py``) a batch of requests is answered when its *longest* movement
is drawn, and a request that arrives meanwhile waits for the whole batch first. For a family that
draws step by step (:attr:`TrajectorySampler.continuous`: ar_mdn, unless it chooses among
candidates) a stepper instead keeps one
:class:`~trajsynth.models.ar_mdn.rollout.Rollout` going: before each step it adds the requests
that arrived (up to ``max_live`` rows), after each step it answers those whose movement ended. A
request waits at most one step to start and is answered after its own steps, the way servers of
language models batch token by token.

The stepper runs in a thread of the server process (``workers=0``) or in worker processes, each
with its own copy of the model; a request goes to the worker with the fewest requests in hand.
Stepping is Python-bound, so in a thread it shares the server's GIL with HTTP; a worker process
has a core of its own. A worker that dies fails the requests it held and is started again.

Unseeded requests only: a seeded request must be exactly ``sampler.path(start, end, seed)``,
which the micro-batcher runs alone.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import threading
from pathlib import Path

from .batching import Overloaded
from .jobs import PathJob
from .sampler import TrajectorySampler
from .stepper import ThreadInbox, run_stepper, stepper_process


class _Worker:
    """One stepper (a thread, or a process and the thread that reads its answers) and the requests it holds."""

    def __init__(self, settle, lost, sampler: TrajectorySampler, checkpoint: str | None, max_live: int):
        self.held: set[int] = set()  # request ids given to it and not answered (read on the event loop only)
        self._settle, self._lost = settle, lost
        self._sampler, self._checkpoint, self._max_live = sampler, checkpoint, max_live
        self._start()

    def _start(self) -> None:
        if self._checkpoint is None:  # in this process: a queue in, answers straight to the event loop
            self._inbox = ThreadInbox()
            args = (self._sampler, self._inbox.take, self._settle, self._max_live)
            self._thread = threading.Thread(target=run_stepper, args=args, name="trajsynth-rollout", daemon=True)
        else:
            ctx = multiprocessing.get_context("spawn")  # nothing of this process's torch state is inherited
            self._conn, child = ctx.Pipe()
            self._proc = ctx.Process(target=stepper_process, args=(self._checkpoint, self._sampler.render, child,
                                                                     self._max_live), daemon=True,
                                     name="trajsynth-model")
            self._proc.start()
            child.close()
            self._thread = threading.Thread(target=self._read, name="trajsynth-answers", daemon=True)
        self._thread.start()

    def send(self, items: list[tuple]) -> None:
        """Hand (request id, start, end) items to the stepper; None: stop."""
        if self._checkpoint is None:
            self._inbox.put(items)
        else:
            self._conn.send(items)

    def _read(self) -> None:
        """Answers from the worker process to the event loop; when it dies, its requests fail and it restarts."""
        while True:
            try:
                answers = self._conn.recv()
            except (EOFError, OSError):
                break
            if answers is None:  # it stopped as asked
                return
            self._settle(answers)
        self._lost(self)  # its requests fail (on the event loop), and a new worker takes the next ones
        self._start()

    def stop(self) -> None:
        try:
            self.send(None)
        except (OSError, ValueError):
            pass
        self._thread.join(timeout=10)
        if self._checkpoint is not None:
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.kill()


class ContinuousBatcher:
    """Answers unseeded :class:`PathJob` s from roll-outs that requests join and leave between steps.

    ``workers`` 0: one stepper thread in this process; N: N worker processes, each loading
    ``checkpoint``. At most ``max_live`` movements are drawn at once per stepper; more wait, and
    past ``max_queue`` waiting requests :meth:`submit` raises :class:`Overloaded`.
    """

    def __init__(self, sampler: TrajectorySampler, max_live: int = 64, max_queue: int = 1024,
                 checkpoint: str | Path | None = None, workers: int = 0):
        if not sampler.continuous:
            raise ValueError(f"this {sampler.family} model does not draw step by step toward an end point: "
                             "continuous batching needs one that does (ar_mdn without candidates); use micro-batching")
        if workers > 0 and checkpoint is None:
            raise ValueError("worker processes load the checkpoint file: pass checkpoint= with workers > 0")
        self.sampler, self.max_live, self.max_queue = sampler, max_live, max_queue
        self.checkpoint, self.workers = (None if workers == 0 else str(checkpoint)), max(1, workers)
        self._futures: dict[int, asyncio.Future] = {}
        self._ids = itertools.count()
        self._pool: list[_Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def waiting(self) -> int:
        """Requests given to the steppers and not yet answered."""
        return len(self._futures)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        settle = lambda answers: self._loop.call_soon_threadsafe(self._settle, answers)  # noqa: E731
        lost = lambda worker: self._loop.call_soon_threadsafe(self._fail_held, worker)  # noqa: E731
        self._pool = await asyncio.to_thread(
            lambda: [_Worker(settle, lost, self.sampler, self.checkpoint, self.max_live) for _ in range(self.workers)])

    async def stop(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self._pool))
        self._pool = []
        self._settle([(rid, None, "the server is stopping") for rid in list(self._futures)])

    async def submit(self, job: PathJob) -> dict:
        """The answer to ``job`` (a JSON-ready movement); Overloaded when the steppers hold too many."""
        if not self._pool:
            raise RuntimeError("the continuous batcher is not started")
        if len(self._futures) >= self.max_queue + self.max_live * len(self._pool):
            raise Overloaded(f"server busy: {self.max_queue} requests are waiting; try again shortly")
        rid, future = next(self._ids), self._loop.create_future()
        worker = min(self._pool, key=lambda w: len(w.held))
        self._futures[rid] = future
        worker.held.add(rid)
        try:
            worker.send([(rid, job.start, job.end)])
            return await future
        finally:
            self._futures.pop(rid, None)
            worker.held.discard(rid)

    def _fail_held(self, worker: _Worker) -> None:
        self._settle([(rid, None, "the model worker process stopped unexpectedly") for rid in worker.held])

    def _settle(self, answers: list[tuple]) -> None:
        """(request id, JSON-ready movement or None, error message or None) items, on the event loop."""
        for rid, result, error in answers:
            future = self._futures.get(rid)
            if future is None or future.done():  # the client went away
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(RuntimeError(error))

