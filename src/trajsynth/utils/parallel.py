"""Map a function over items in worker processes (or in-process for one worker)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor


def process_map(fn: Callable, items: Iterable, workers: int) -> list:
    """``[fn(x) for x in items]``, in ``workers`` processes when > 1; results keep the items' order.

    Workers are spawned, not forked: fresh interpreters inherit no torch thread pools or
    locks from the parent. ``fn`` must be picklable (a module-level function or a partial of one).
    """
    items = list(items)
    if workers <= 1:
        return [fn(x) for x in items]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return list(pool.map(fn, items))
