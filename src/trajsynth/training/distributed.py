"""Data-parallel training under ``torchrun``: one process per rank, gradients averaged after every backward.

``torchrun --nproc_per_node=N -m trajsynth train ...`` starts N copies of the command; each finds
its rank in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), joins one process group
(gloo on CPU, nccl for a model on a GPU) and trains a full copy of the model on its own share of
every batch. Before each optimiser step a phase calls ``ctx.sync_grads(params)``, which replaces
every gradient by its mean over the ranks, so each rank applies the same update to the same
weights: the model trains as one process would with a batch world_size × batch_size.

Why not ``DistributedDataParallel``: its wrapper reduces the gradients of the parameters that took
part in the wrapped module's ``forward``, and expects the same set of trained parameters on every
step. The families train through several methods (``forward_autoencoder``,
``forward_discriminator``, ``forward_generator``), with separate optimisers over parts of one
module, and freeze parts between phases. Averaging the gradients of exactly the parameters a step
is about to update, between ``backward()`` and the optimiser step, is what DDP's reducer does —
one all-reduce of the summed gradients divided by world_size — without those constraints. The cost
is that the reduction does not overlap with ``backward()``, which matters little for nets this small.

Every random draw of a phase must agree across ranks or be meant to differ (see the families'
training modules); every rank evaluates (plateau schedulers and convergence checks then decide the
same), and rank 0 alone writes files (``trajsynth.training.loop``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from ..models.base import StepContext
from .runs import new_run_dir

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched() -> bool:
    """True in a process started by ``torchrun`` (or anything that sets its environment)."""
    return all(v in os.environ for v in LAUNCH_VARS)


def multi_process() -> bool:
    """True in one of several processes of a launch (a ``torchrun`` of one process trains as a plain one)."""
    return launched() and int(os.environ["WORLD_SIZE"]) > 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def backend_for(device: str | torch.device) -> str:
    """nccl for a model on a GPU, gloo otherwise (nccl reduces CUDA tensors only)."""
    cuda = torch.device(device).type == "cuda" and torch.cuda.is_available()
    return "nccl" if cuda and dist.is_nccl_available() else "gloo"


def init(device: str | torch.device = "cpu") -> StepContext:
    """Join the process group of a ``torchrun`` launch; a plain one-process context otherwise."""
    if not multi_process():
        return StepContext()
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend)
    return StepContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       sync_grads=average_gradients, average=average_values)


def end_process(code: int) -> None:
    """End a rank of a launch at once, with exit status ``code``, without the interpreter's teardown.

    Call it once the rank's work is done (process group left, files written and closed). What remains
    is finalization, where gloo's C++ threads can outlive the objects they use: now and then a rank
    then aborts (SIGABRT, "terminate called without an active exception") after a finished run, and
    torchrun reports the whole launch as failed. ``os._exit`` skips that teardown; logging and the
    standard streams are flushed first.
    """
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to lose
            pass
    os._exit(code)


def close() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def session(device: str | torch.device = "cpu") -> Iterator[StepContext]:
    """``init`` on entry, leave the process group on exit (also after an error)."""
    ctx = init(device)
    try:
        yield ctx
        if dist.is_initialized():
            dist.barrier()  # leave together: a rank tearing gloo down while the other still talks aborts (SIGABRT)
    finally:
        close()


def average_gradients(params: list[nn.Parameter]) -> None:
    """Replace each gradient by its mean over the ranks, in ONE all-reduce of a flat buffer.

    A parameter without a gradient on this rank counts as zero, like DDP's unused parameters; one
    without a gradient on every rank keeps none, so the optimiser skips it as one process would.
    """
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    present = torch.tensor([p.grad is not None for p in params], dtype=grads[0].dtype, device=grads[0].device)
    flat = _flatten_dense_tensors([*grads, present])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    *mean, counts = _unflatten_dense_tensors(flat, [*grads, present])
    with torch.no_grad():
        for p, g, n in zip(params, mean, counts.tolist(), strict=True):
            if n == 0:
                continue
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.copy_(g)


def average_values(values: Mapping[str, float]) -> dict[str, float]:
    """The mean of each number over the ranks (a logging window's losses), in one all-reduce."""
    keys = list(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))


def broadcast_module(module: nn.Module, ctx: StepContext) -> None:
    """Give every rank rank 0's weights and buffers (one broadcast per dtype).

    Construction is seeded alike on every rank, but a rank that built or loaded its model
    differently would otherwise train a different model on averaged gradients without notice.
    """
    if ctx.world_size == 1:
        return
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in module.state_dict().values():
        by_dtype.setdefault(t.dtype, []).append(t)
    with torch.no_grad():
        for tensors in by_dtype.values():
            flat = _flatten_dense_tensors(tensors)
            dist.broadcast(flat, src=0)
            for t, src in zip(tensors, _unflatten_dense_tensors(flat, tensors), strict=True):
                t.copy_(src)


def agree_run_dir(base: str | Path, ctx: StepContext) -> Path:
    """One new run folder for all ranks: rank 0 creates it and sends its name to the others."""
    if ctx.world_size == 1:
        return new_run_dir(base)
    box = [str(new_run_dir(base)) if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])


@contextmanager
def local_main_first(ctx: StepContext) -> Iterator[None]:
    """Local rank 0 of each machine runs the block first, the others after it (e.g. to build a cache)."""
    first = ctx.world_size == 1 or local_rank() == 0
    if not first:
        dist.barrier()
    yield
    if ctx.world_size > 1 and first:
        dist.barrier()


def barrier(ctx: StepContext) -> None:
    """Wait for every rank (before exit: rank 0's last checkpoint is written once all are done)."""
    if ctx.world_size > 1:
        dist.barrier()


def say(ctx: StepContext, *args, **kw) -> None:
    """print() on rank 0 only: N processes must not print every line N times."""
    if ctx.is_main:
        print(*args, **kw)


def error(ctx: StepContext, message: str) -> None:
    """An error line on stderr from any rank (a failure may happen on one rank only)."""
    prefix = f"[rank {ctx.rank}] " if ctx.world_size > 1 else ""
    print(f"{prefix}error: {message}", file=sys.stderr)
