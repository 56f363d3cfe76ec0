"""Learning-rate schedules shared by every family's training: none | cosine | step | plateau."""

from __future__ import annotations

import torch


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, total_steps: int):
    """A scheduler stepped once per iteration (``plateau``: once per evaluation, with a metric)."""
    total_steps = max(1, total_steps)
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=0.0)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, total_steps // 3), gamma=0.5)
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
    raise ValueError(f"unknown lr_schedule {name!r}")


def step_scheduler(sched, metric: float | None = None) -> None:
    """Per-iteration step for ordinary schedules; plateau only when given a metric."""
    if sched is None:
        return
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if metric is not None:
            sched.step(metric)
    elif metric is None:
        sched.step()
