"""Map a function over items in worker processes (or in-process for one worker)."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor

PARENT_POLL_S = 1.0  # how often a worker checks that the process that started it is still there


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: end the worker as soon as its parent is gone.

    A pool's workers notice a dead parent only when they ask for their next item, so a parent killed
    (SIGKILL, an out-of-memory kill, ``kill PID``) in the middle of a long item — a training run of
    ``benchmark``, a study's trials — would leave them training on, unseen, for up to an hour.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)  # at once: nobody is left to receive a result

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def process_map(fn: Callable, items: Iterable, workers: int) -> list:
    """``[fn(x) for x in items]``, in ``workers`` processes when > 1; results keep the items' order.

    Workers are spawned, not forked: fresh interpreters inherit no torch thread pools or
    locks from the parent. ``fn`` must be picklable (a module-level function or a partial of one).
    A worker exits within about a second when the calling process dies.
    """
    items = list(items)
    if workers <= 1:
        return [fn(x) for x in items]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_exit_with_parent,
                             initargs=(os.getpid(),)) as pool:
        return list(pool.map(fn, items))
