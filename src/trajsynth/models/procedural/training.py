"""The procedural family's one phase, ``fit``: every table fitted from the training split in one step.

The training movements' pixel paths are recovered exactly from their features (the format's
inverse), so fitting needs nothing beyond what every family is trained on. Validation compares the
durations and end points of movements generated for the validation conditions with the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...config import TrainConfig
from ...data.features import NormalizationParams, features_to_paths
from ..base import FamilyTraining, Phase


@dataclass
class ProceduralTrain(TrainConfig):
    """Nothing to tune beyond the shared settings: fitting is one deterministic step (``seed`` drives validation)."""

    eval_samples: int = 1000  # validation movements generated to check the fit


class ProceduralTraining(FamilyTraining):
    objectives: dict[str, tuple[str, ...]] = {}

    def phases(self) -> list[Phase]:
        return [Phase("fit", 1, self.fit_step, self.evaluate, self._line, tracked="val_duration_w1_ms",
                      parts=())]

    def _paths(self, ds) -> tuple[list[np.ndarray], np.ndarray]:
        if not self.data.normalization:
            raise ValueError("the procedural family fits pixel movements: it needs a mouse-movement data directory "
                             "(its scaling recovers the paths), not benchmark windows")
        params = NormalizationParams.from_dict(self.data.normalization)
        C = ds.C.numpy().reshape(len(ds), -1)[:, 0]  # (N,)
        return features_to_paths(ds.X.numpy(), C, ds.L.numpy(), params), C

    def fit_step(self) -> dict[str, float]:
        paths, C = self._paths(self.data.train)
        return self.model.fit(paths, C, NormalizationParams.from_dict(self.data.normalization))

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        ds = self.data.val or self.data.train
        n = min(len(ds), self.cfg.eval_samples)
        real, C = self._paths(ds)
        real = real[:n]
        gen = torch.Generator().manual_seed(self.cfg.seed + 12345)
        fake = self.model.generate_paths(n, torch.as_tensor(C[:n]).reshape(-1, 1), rng=gen)
        dur_r = np.sort([p[-1, 0] for p in real])
        dur_f = np.sort([p[-1, 0] for p in fake])
        end_r = np.array([np.hypot(*p[-1, 1:]) for p in real])
        end_f = np.array([np.hypot(*p[-1, 1:]) for p in fake])
        return {"val_duration_w1_ms": float(np.abs(dur_r - dur_f).mean()),  # W1 of equal-size samples
                "val_end_error_px": float(np.median(np.abs(end_f - end_r)))}

    def _line(self, it: int, mean: dict, its: float) -> str:
        shown = " | ".join(f"{k} {v:.4g}" for k, v in mean.items())
        return f"[fit] {shown}"
