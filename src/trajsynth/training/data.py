"""Data of a training run: train / val datasets and the scaling needed to invert features."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..data.directory import load_params, load_split
from ..data.loading import TrajectoryDataset, zscore_filter
from ..data.validate import validate_data_dir
from .two_stage import TrainData


def load_train_data(data_dir: str | Path, quality_filter_z: float = 0.0, validate: bool = True) -> TrainData:
    """Validate ``data_dir`` (clear errors, not tracebacks), then load train and val."""
    data_dir = Path(data_dir)
    if validate:
        report = validate_data_dir(data_dir)
        if not report.ok:
            raise ValueError(f"data directory {data_dir} is not valid:\n" + "\n".join(report.errors))
    train = load_split(data_dir, "train", with_paths=False)
    X, C, L = train.X, train.C, train.L
    if len(L) == 0:
        raise ValueError(f"{data_dir}: the train split is empty")
    if quality_filter_z > 0:
        keep, rep = zscore_filter(X, L, quality_filter_z)
        print(f"quality filter (|z| > {quality_filter_z}): removed {rep.removed} of {len(L)} training sequences "
              f"{rep.removed_by_stat}", file=sys.stderr)
        X, C, L = X[keep], C[keep], L[keep]
    val = load_split(data_dir, "val", with_paths=False)
    return TrainData(
        train=TrajectoryDataset(X, C, L),
        val=TrajectoryDataset(val.X, val.C, val.L) if len(val.L) else None,
        normalization=load_params(data_dir).to_dict(),
        data_dir=str(data_dir),
    )


def data_max_len(data_dir: str | Path) -> int:
    return int(np.load(Path(data_dir) / "X_train.npy", mmap_mode="r", allow_pickle=False).shape[1])


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
