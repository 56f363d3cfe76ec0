"""The data of a training run: validated train / val datasets and the scaling that inverts features."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .clock import EventClock
from .directory import is_series, load_meta, load_params, load_split
from .features import NormalizationParams, features_to_paths
from .loading import TrajectoryDataset, zscore_filter
from .validate import validate_data_dir


@dataclass
class TrainData:
    train: TrajectoryDataset
    val: TrajectoryDataset | None
    normalization: dict
    data_dir: str
    event_clock: dict | None = None  # EventClock.to_dict() of the training paths (mouse data only)
    labels: dict | None = None  # {"activity": names, "domain": names} of labelled data (meta.json)

    def condition_quantiles(self) -> list[float]:
        """101 quantiles of the training conditions: the sampler draws unrequested conditions from them."""
        c = self.train.C.reshape(len(self.train), -1)[:, 0].numpy()
        return np.quantile(c, np.linspace(0, 1, 101)).tolist()

    def summary(self) -> dict:
        """What a checkpoint records of its data: enough to sample in pixels without the data directory."""
        return {"normalization": self.normalization, "data_dir": self.data_dir,
                "max_seq_len": self.train.max_len, "condition_quantiles": self.condition_quantiles(),
                **({"event_clock": self.event_clock} if self.event_clock is not None else {}),
                **({"labels": self.labels} if self.labels else {})}


def load_train_data(data_dir: str | Path, quality_filter_z: float = 0.0, validate: bool = True) -> TrainData:
    """Validate ``data_dir`` (clear errors, not tracebacks), then load train and val."""
    data_dir = Path(data_dir)
    if validate:
        report = validate_data_dir(data_dir)
        if not report.ok:
            raise ValueError(f"data directory {data_dir} is not valid:\n" + "\n".join(report.errors))
    train = load_split(data_dir, "train", with_paths=False)
    X, C, L, A, D = train.X, train.C, train.L, train.activity, train.domain
    if len(L) == 0:
        raise ValueError(f"{data_dir}: the train split is empty")
    if quality_filter_z > 0:
        keep, rep = zscore_filter(X, L, quality_filter_z)
        print(f"quality filter (|z| > {quality_filter_z}): removed {rep.removed} of {len(L)} training sequences "
              f"{rep.removed_by_stat}", file=sys.stderr)
        X, C, L = X[keep], C[keep], L[keep]
        A, D = (None if v is None else v[keep] for v in (A, D))
    val = load_split(data_dir, "val", with_paths=False)
    meta = load_meta(data_dir)
    series = is_series(meta)  # labelled sensor series: no pixel scaling, no event clock
    params = None if series else load_params(data_dir)
    return TrainData(
        train=TrajectoryDataset(X, C, L, A, D),
        val=TrajectoryDataset(val.X, val.C, val.L, val.activity, val.domain) if len(val.L) else None,
        normalization={} if params is None else params.to_dict(),
        data_dir=str(data_dir),
        event_clock=None if params is None else fit_clock(X, C, L, params).to_dict(),
        labels=label_names(meta),
    )


def label_names(meta: dict) -> dict | None:
    """{"activity": names, "domain": names} from a data directory's meta.json (those it has), or None."""
    names = {k: list(meta[f"{k}_names"]) for k in ("activity", "domain") if isinstance(meta.get(f"{k}_names"), list)}
    return names or None


def fit_clock(X: np.ndarray, C: np.ndarray, L: np.ndarray, params: NormalizationParams) -> EventClock:
    """The event clock of the training movements (their paths recovered from the features, exact up to rounding)."""
    C = np.asarray(C).reshape(len(L), -1)[:, 0]
    return EventClock.fit(features_to_paths(X, C, L, params))
