"""TensorBoard logging when the ``tensorboard`` package is installed; silent otherwise.

TensorBoard writes its event file in a background thread. When a write fails there (a full
disk), the thread keeps the error, prints a traceback and ends, and the next call here raises the
same error again. The traceback is left out (see :func:`_quiet_writer_thread`) and the error
raised here is a :class:`~trajsynth.utils.atomic.WriteError` naming the log directory: one line.
"""

from __future__ import annotations

import errno
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..utils.atomic import WriteError


def _quiet_writer_thread(previous: Callable = threading.excepthook) -> Callable:
    """An excepthook that passes over OSErrors of TensorBoard's writer thread (re-raised to its caller)."""
    def hook(args) -> None:
        if type(args.thread).__name__ == "_AsyncWriterThread" and isinstance(args.exc_value, OSError):
            return
        previous(args)

    hook.quiet_tensorboard = True
    return hook


class TensorBoardLog:
    def __init__(self, log_dir: str | Path, enabled: bool = True):
        self.writer, self.log_dir = None, Path(log_dir)
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("note: TensorBoard logging is off (the tensorboard package is not installed)",
                  file=sys.stderr)
            return
        if not getattr(threading.excepthook, "quiet_tensorboard", False):
            threading.excepthook = _quiet_writer_thread(threading.excepthook)
        self.writer = self._checked(SummaryWriter, str(log_dir))

    def _checked(self, call: Callable, *args, **kw):
        """``call(*args, **kw)``; an OSError of the event file (now or from the writer thread) as a WriteError."""
        try:
            return call(*args, **kw)
        except WriteError:
            raise
        except OSError as e:
            raise WriteError(e.errno or errno.EIO, e.strerror or str(e), str(self.log_dir)) from None

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer:
            for k, v in values.items():
                self._checked(self.writer.add_scalar, f"{prefix}/{k}", v, step)

    def figure(self, tag: str, fig, step: int) -> None:
        if self.writer:
            self._checked(self.writer.add_figure, tag, fig, step)

    def embedding(self, z: torch.Tensor, labels: np.ndarray, tag: str, step: int) -> None:
        if self.writer:
            self._checked(self.writer.add_embedding, z, metadata=[f"{v:.3f}" for v in labels], tag=tag,
                          global_step=step)

    def flush(self) -> None:
        if self.writer:
            self._checked(self.writer.flush)

    def close(self) -> None:
        """Flush and close; a failure here is a one-line warning (the run's own outputs are already written)."""
        if self.writer:
            writer, self.writer = self.writer, None
            try:
                self._checked(writer.close)
            except WriteError as e:
                print(f"warning: TensorBoard log incomplete: {e}", file=sys.stderr)
