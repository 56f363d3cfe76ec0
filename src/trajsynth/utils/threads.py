"""How many threads torch uses: a policy, so that concurrent jobs never oversubscribe the cores.

The networks here are small: a training step is a few hundred small kernels, generation is a
few. Two processes that each spin torch's default team of threads on the same cores slow each
other down 3–10× (OpenMP threads busy-wait for their team), while one thread per process loses
little. So:

* **inference** (``sample``, ``path``, ``generate``, export, serving) runs on one intra-op
  thread while its batches are small (a second thread only adds synchronisation), and a call that
  generates at least :data:`BATCH_ROWS` movements at once takes the free cores: a batch that large
  is compute-bound (the default ``ar_mdn``, 4,096 movements on 2 idle cores: ~1.4× the movements/s
  of one thread). A server keeps one thread for every request: its requests run side by side. The
  thread count does not change what a seed draws (tested);
* **training** takes the cores that are free when it starts (measured from ``/proc/stat`` over
  a tenth of a second; all cores where that cannot be read), divided among the workers that start
  together (tuning ``--jobs``, torchrun ranks on one machine);
* a **resumed** run keeps the count its checkpoint was trained with (a different count changes
  the weights' last bits, and a resume ends with the weights of a run never stopped);
* ``--threads N`` (every command), then ``TRAJSYNTH_THREADS``, then ``OMP_NUM_THREADS`` override
  the policy, in that order.

OpenMP's wait policy is left as it is. Measured on 2 cores, default model, stage-1 it/s: two
threads idle 28–33 with OpenMP's spinning wait, 9 with ``OMP_WAIT_POLICY=PASSIVE`` (every small
kernel then wakes a sleeping thread); one thread 21–23 either way. A two-thread job that a second
job joins later drops to ~8 while they overlap — no worse than passive waiting gives it always.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "TRAJSYNTH_THREADS"


def cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under taskset or a container quota)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None where it cannot be read."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def free_cores(window_s: float = 0.1) -> int:
    """Cores not busy with other work right now (at least 1)."""
    a = _cpu_times()
    time.sleep(window_s)
    b = _cpu_times()
    n = cores()
    if a is None or b is None or b[1] <= a[1]:
        return n
    busy_share = (b[0] - a[0]) / (b[1] - a[1])  # of all the machine's CPUs
    machine = os.cpu_count() or n
    busy = busy_share * machine  # cores' worth of other work
    return max(1, min(n, round(machine - busy)))


def override() -> int | None:
    """The thread count a user set: TRAJSYNTH_THREADS, else OMP_NUM_THREADS; None if neither."""
    for name in (ENV, "OMP_NUM_THREADS"):
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                n = int(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} must be a whole number of threads") from None
            if n < 1:
                raise ValueError(f"{name}={raw!r} must be >= 1")
            return n
    return None


def training_threads(workers: int = 1, resumed: object = None) -> int:
    """Threads of one training process among ``workers`` that start together.

    ``resumed`` is the count a checkpoint's run trained with: a resumed run keeps it (at most the
    cores it may use), because a different count changes how sums are split and so the weights'
    last bits, and a resume must end with the weights of a run never stopped.
    """
    if (n := override()) is not None:
        return n
    if isinstance(resumed, int) and not isinstance(resumed, bool) and resumed >= 1:
        return min(resumed, cores())
    return max(1, free_cores() // max(1, workers))


BATCH_ROWS = 1024  # a generation call of at least this many movements takes the free cores
FREE_CORES_TTL_S = 10.0  # how long a reading of the free cores serves later generation calls
_free_reading: tuple[float, int] | None = None  # (time.monotonic() of the reading, free cores)


def inference_threads(rows: int = 1) -> int:
    """Threads of a generation call of ``rows`` movements: the override; else the free cores for a batch of
    at least :data:`BATCH_ROWS`, one thread for less."""
    if (n := override()) is not None:
        return n
    return _recent_free_cores() if rows >= BATCH_ROWS else 1


def _recent_free_cores() -> int:
    """free_cores over 50 ms, read again only after FREE_CORES_TTL_S: a caller drawing batches in a loop
    would otherwise sleep 50 ms per call (~7 % of a 4,096-movement batch)."""
    global _free_reading
    now = time.monotonic()
    if _free_reading is None or now - _free_reading[0] > FREE_CORES_TTL_S:
        _free_reading = (now, free_cores(0.05))
    return _free_reading[1]


def set_threads(n: int) -> None:
    import torch

    if n != torch.get_num_threads():
        torch.set_num_threads(n)


@contextmanager
def using_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` intra-op threads, then restore the previous count."""
    import torch

    before = torch.get_num_threads()
    set_threads(n)
    try:
        yield
    finally:
        set_threads(before)
