"""The stepper of continuous batching: one roll-out that requests join and leave, in a thread or a process.

It takes (request id, start, end) items from an inbox, adds them to the roll-out before a step
(at most ``max_live`` movements at once; the rest wait in order), steps, and sends each finished
movement as ``(request id, JSON-ready movement, None)``, or ``(request id, None, message)`` when
drawing failed. ``None`` in the inbox stops it. See ``continuous.py`` for why.
"""

from __future__ import annotations

import os
import queue
from collections import deque
from collections.abc import Callable

import numpy as np
import torch

from ..utils.threads import using_threads
from .jobs import movement_json
from .sampler import TrajectorySampler
from .workers import load_in_worker

Take = Callable[[bool], "list[tuple] | None"]  # block? -> new items ([] if none), None: stop
# A join costs about a third of a step whatever its size, so while movements are being drawn the
# waiting requests join together: once JOIN_AT wait, or once the oldest has waited JOIN_WITHIN steps.
# Measured (32 closed-loop requests, no HTTP, idle 2 cores): p99 114 -> 101 ms, 928 -> 1,023 movements/s.
JOIN_AT, JOIN_WITHIN = 4, 3


class ThreadInbox:
    """The inbox of a stepper thread: lists of items put by the event loop."""

    def __init__(self):
        self._q: queue.Queue = queue.Queue()

    def put(self, items: list[tuple] | None) -> None:
        self._q.put(items)

    def take(self, block: bool) -> list[tuple] | None:
        out: list[tuple] = []
        try:
            while True:
                items = self._q.get(timeout=0.1) if block and not out else self._q.get_nowait()
                if items is None:
                    return None
                out += items
        except queue.Empty:
            return out


def stepper_process(checkpoint: str, render: bool, conn, max_live: int) -> None:
    """A worker process: load the model, then step until told to stop (answers go back through ``conn``)."""
    sampler = load_in_worker(checkpoint, render)

    def take(block: bool) -> list[tuple] | None:
        out: list[tuple] = []
        while (block and not out) or conn.poll():
            items = conn.recv()
            if items is None:
                return None
            out += items
        return out

    try:
        run_stepper(sampler, take, conn.send, max_live)
        conn.send(None)
    except (EOFError, OSError, KeyboardInterrupt):  # the server went away: nothing to answer to
        pass


def run_stepper(sampler: TrajectorySampler, take: Take, send: Callable[[list], None], max_live: int) -> None:
    """Join, step and answer until ``take`` says stop; a failed step fails the movements it held, not the stepper."""
    gen = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little") >> 2)  # fresh draws per start
    backlog: deque[tuple] = deque()
    waited = 0  # steps the oldest waiting request has waited
    with torch.inference_mode(), using_threads(sampler.threads_for(1)):  # small batches: one thread unless set
        run, live = sampler.model.rollout(gen), {}  # live: roll-out row id -> item
        while True:
            new = take(not live and not backlog)
            if new is None:
                return
            backlog.extend(new)
            try:
                if backlog and (not live or len(backlog) >= JOIN_AT or waited >= JOIN_WITHIN):
                    _join(sampler, run, live, backlog, gen, max_live)
                waited = waited + 1 if backlog else 0
                if run.live and (done := run.step()) is not None:
                    send(_finished(sampler, done, live))
            except Exception as e:  # noqa: BLE001 - answered as an error; the stepper goes on
                send([(item[0], None, f"{type(e).__name__}: {e}") for item in live.values()])
                run, live = sampler.model.rollout(gen), {}


def _join(sampler: TrajectorySampler, run, live: dict, backlog: deque, gen: torch.Generator, max_live: int) -> None:
    """Move waiting items into the roll-out, oldest first, while fewer than ``max_live`` are drawn."""
    items = [backlog.popleft() for _ in range(min(len(backlog), max_live - len(live)))]
    if not items:
        return
    starts = np.array([it[1] for it in items], np.float64)  # (m, 2), checked by the endpoint
    ends = np.array([it[2] for it in items], np.float64)
    ids = sampler.join(run, starts, ends, gen)
    live.update(zip(ids.tolist(), items, strict=True))


def _finished(sampler: TrajectorySampler, done: dict[str, torch.Tensor], live: dict) -> list[tuple]:
    out = []
    for i, path, length in zip(done["id"].tolist(), done["path"].numpy(), done["length"].tolist(), strict=True):
        rid, start, end = live.pop(i)
        p = sampler.placed(path[:length], np.asarray(start, np.float64), np.asarray(end, np.float64))
        out.append((rid, movement_json(p, tuple(end)), None))
    return out
