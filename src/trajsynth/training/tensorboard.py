"""TensorBoard logging when the ``tensorboard`` package is installed; silent otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch


class TensorBoardLog:
    def __init__(self, log_dir: str | Path, enabled: bool = True):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("note: TensorBoard logging is off (the tensorboard package is not installed)",
                  file=sys.stderr)
            return
        self.writer = SummaryWriter(str(log_dir))

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer:
            for k, v in values.items():
                self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def figure(self, tag: str, fig, step: int) -> None:
        if self.writer:
            self.writer.add_figure(tag, fig, step)

    def embedding(self, z: torch.Tensor, labels: np.ndarray, tag: str, step: int) -> None:
        if self.writer:
            self.writer.add_embedding(z, metadata=[f"{v:.3f}" for v in labels], tag=tag, global_step=step)

    def close(self) -> None:
        if self.writer:
            self.writer.close()
