"""Run by ``test_distributed.py`` under torchrun: what only each rank can see, written to ``OUT/rank<r>.*``.

Usage: ``torchrun --nproc_per_node=2 --standalone tests/ddp_worker.py DATA_DIR OUT``. Each rank
averages known gradients, trains a tiny run through the Python API from deliberately different
starting weights, and saves its own final weights, its view of stage-2 noise and its RNG state.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn

from trajsynth.data.train_data import load_train_data
from trajsynth.models.base import StepContext
from trajsynth.models.registry import run_config
from trajsynth.training import distributed
from trajsynth.training.loop import Trainer


def averaged_grads(ctx: StepContext) -> dict:
    """Rank r holds gradient r+1 for ``a``; only rank 0 one for ``b``; no rank one for ``c``."""
    a, b, c = (nn.Parameter(torch.zeros(n)) for n in (3, 2, 1))
    a.grad = torch.full((3,), float(ctx.rank + 1))
    if ctx.rank == 0:
        b.grad = torch.full((2,), 4.0)
    ctx.sync_grads([a, b, c])
    return {"a": a.grad.tolist(), "b": b.grad.tolist(), "c_is_none": c.grad is None,
            "values": ctx.average({"x": float(ctx.rank), "y": 2.0})}


def train(ctx: StepContext, data_dir: Path, run_dir: Path) -> Trainer:
    run = run_config("latent_wgan", "tiny", max_seq_len=40, stage1_threshold=0.0)
    tr = Trainer(run, load_train_data(data_dir), run_dir, tensorboard=False, progress=False, ctx=ctx)
    if ctx.rank > 0:  # a rank that built another model must still start from rank 0's weights
        with torch.no_grad():
            for p in tr.model.parameters():
                p.add_(1.0)
    distributed.broadcast_module(tr.model, ctx)
    tr.train()
    return tr


def main(data_dir: str, out: str) -> None:
    out_dir = Path(out)
    with distributed.session() as ctx:
        report = averaged_grads(ctx)
        tr = train(ctx, Path(data_dir), out_dir / "run")
        noise = tr.training._share(torch.randn, 4, 3)  # this rank's rows of one shared draw
        report.update(world_size=ctx.world_size, noise=noise.tolist(), rng=tr.training.rng.get_state().tolist())
        torch.save(tr.model.state_dict(), out_dir / f"rank{ctx.rank}.pt")
        (out_dir / f"rank{ctx.rank}.json").write_text(json.dumps(report))
        distributed.barrier(ctx)


if __name__ == "__main__":
    main(*sys.argv[1:])
