"""The UEA / UCR ``.ts`` format (sktime / aeon) → a labelled series data directory.

A ``.ts`` file has ``@key value`` header lines (``@dimensions``, ``@classLabel true NAMES…``) and,
after ``@data``, one case per line: each dimension's comma-separated values, dimensions separated by
``:``, the class label last. ``{dataset}_TRAIN.ts`` gives the train and validation splits (a
stratified, seeded draw), ``{dataset}_TEST.ts`` the test split.

The data directory is the project's (X, C, L per split, meta.json) with ``kind: series``:
X (N, T, channels) each channel scaled to [-1, 1] by the range of the training cases (values of
other splits outside it are clipped, and counted in meta.json), C zeros (no condition), L the
case lengths, A the activity labels with their names; no pixel paths and no mouse scaling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .directory import SERIES_KIND, SPLITS, SplitArrays, write_data_dir


class TsFormatError(ValueError):
    """A ``.ts`` file that cannot be read; the message names the file (and line)."""


@dataclass
class TsCases:
    X: np.ndarray  # (N, T, D) float32, zero past each length
    L: np.ndarray  # (N,) int64
    labels: np.ndarray  # (N,) str
    class_names: list[str]  # from @classLabel (or the labels seen, sorted)


def _header(path: Path, lines: list[str]) -> tuple[dict[str, str], int]:
    """(@key → value, index of the first data line)."""
    header: dict[str, str] = {}
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower() == "@data":
            return header, i + 1
        if not line.startswith("@"):
            raise TsFormatError(f"{path}:{i + 1}: expected a @key header line or @data, got {line[:40]!r}")
        key, _, value = line[1:].partition(" ")
        header[key.lower()] = value.strip()
    raise TsFormatError(f"{path}: no @data line")


def _case(path: Path, n: int, line: str, dims: int | None) -> tuple[list[np.ndarray], str]:
    *channels, label = line.split(":")
    if not channels or (dims is not None and len(channels) != dims):
        raise TsFormatError(f"{path}:{n}: {len(channels)} dimension(s), the header says {dims}")
    try:
        values = [np.array([float(v) for v in ch.split(",")], np.float64) for ch in channels]
    except ValueError:
        raise TsFormatError(f"{path}:{n}: a value is not a number (missing values '?' are not supported)") from None
    if len({len(v) for v in values}) != 1 or not all(np.isfinite(v).all() for v in values):
        raise TsFormatError(f"{path}:{n}: the dimensions differ in length or hold NaN / Inf")
    return values, label.strip()


def read_ts(path: str | Path) -> TsCases:
    """All cases of one ``.ts`` file, or a TsFormatError naming the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeError) as e:
        raise TsFormatError(f"{path}: cannot be read ({e})") from None
    header, first = _header(path, lines)
    if header.get("classlabel", "false").split()[:1] != ["true"]:
        raise TsFormatError(f"{path}: @classLabel is not true: the cases carry no labels")
    dims = int(header["dimensions"]) if header.get("dimensions", "").isdigit() else None
    cases = [_case(path, i + 1, ln.strip(), dims) for i, ln in enumerate(lines[first:], first) if ln.strip()]
    if not cases:
        raise TsFormatError(f"{path}: no cases after @data")
    names = header["classlabel"].split()[1:] or sorted({lab for _, lab in cases})
    unknown = sorted({lab for _, lab in cases} - set(names))
    if unknown:
        raise TsFormatError(f"{path}: labels {unknown[:5]} are not declared in @classLabel")
    L = np.array([len(v[0]) for v, _ in cases], np.int64)
    X = np.zeros((len(cases), int(L.max()), len(cases[0][0])), np.float32)
    for i, (values, _) in enumerate(cases):
        X[i, : L[i]] = np.stack(values, -1)
    return TsCases(X, L, np.array([lab for _, lab in cases]), names)


def stratified_split(labels: np.ndarray, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, val indices): val_frac of each class (at least one where the class has two), seeded."""
    rng = np.random.default_rng(seed)
    val = []
    for name in sorted(set(labels.tolist())):
        idx = rng.permutation(np.flatnonzero(labels == name))
        k = min(len(idx) - 1, max(1, round(val_frac * len(idx)))) if val_frac > 0 else 0
        val.extend(idx[:k].tolist())
    val_idx = np.sort(np.array(val, np.int64))
    return np.setdiff1d(np.arange(len(labels)), val_idx), val_idx


def _split(X: np.ndarray, L: np.ndarray, activity: np.ndarray) -> SplitArrays:
    n = len(L)
    empty = np.full(n, "", dtype=str)
    return SplitArrays(X=X, C=np.zeros(n, np.float32), L=L, points=np.zeros((0, 3), np.float32),
                       offsets=np.zeros(n + 1, np.int64), start_px=np.zeros((n, 2), np.float32), user=empty,
                       session=empty, action=empty, activity=activity.astype(np.int64))


def preprocess_ts(raw_dir: str | Path, out_dir: str | Path, dataset: str, val_frac: float = 0.2, seed: int = 0,
                  overwrite: bool = False) -> dict:
    """``{dataset}_TRAIN.ts`` / ``_TEST.ts`` in raw_dir → a series data directory; returns its meta."""
    raw_dir = Path(raw_dir)
    files = {part: raw_dir / f"{dataset}_{part}.ts" for part in ("TRAIN", "TEST")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not found (expected {dataset}_TRAIN.ts and {dataset}_TEST.ts "
                                f"in {raw_dir})")
    train, test = read_ts(files["TRAIN"]), read_ts(files["TEST"])
    if train.X.shape[2] != test.X.shape[2] or train.class_names != test.class_names:
        raise TsFormatError(f"{files['TEST']}: channels or class names differ from {files['TRAIN']}")
    T = max(train.X.shape[1], test.X.shape[1])
    X_tr, X_te = (np.pad(c.X, ((0, 0), (0, T - c.X.shape[1]), (0, 0))) for c in (train, test))
    code = {name: i for i, name in enumerate(train.class_names)}
    tr_idx, val_idx = stratified_split(train.labels, val_frac, seed)
    center, half = channel_range(X_tr[tr_idx], train.L[tr_idx])
    parts = {"train": (X_tr[tr_idx], train.L[tr_idx], train.labels[tr_idx]),
             "val": (X_tr[val_idx], train.L[val_idx], train.labels[val_idx]),
             "test": (X_te, test.L, test.labels)}
    splits, clipped = {}, {}
    for name, (X, L, labels) in parts.items():
        Xs, clipped[name] = scale(X, L, center, half)
        splits[name] = _split(Xs, L, np.array([code[lab] for lab in labels], np.int64))
    meta = {"kind": SERIES_KIND, "dataset": dataset, "source_files": [p.name for p in files.values()],
            "feature_names": [f"channel_{i}" for i in range(X_tr.shape[2])], "max_seq_len": T,
            "activity_names": list(train.class_names), "users": {s: [] for s in SPLITS},
            "counts": {s: len(splits[s].L) for s in SPLITS}, "scaling": {"center": center.tolist(),
            "half_range": half.tolist()}, "clipped_values": clipped,
            "config": {"val_frac": val_frac, "seed": seed}}
    write_data_dir(out_dir, splits, None, meta, overwrite=overwrite)
    return meta


def channel_range(X: np.ndarray, L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each channel's (centre, half range) over the valid steps of X (N, T, D)."""
    valid = X[np.arange(X.shape[1])[None, :] < L[:, None]]  # (steps, D)
    lo, hi = valid.min(0), valid.max(0)
    return (hi + lo) / 2, np.maximum((hi - lo) / 2, 1e-12)


def scale(X: np.ndarray, L: np.ndarray, center: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, int]:
    """X scaled to [-1, 1] by the training range, clipped, zero past each length; (X, values clipped)."""
    valid = (np.arange(X.shape[1])[None, :] < L[:, None])[:, :, None]  # (N, T, 1)
    y = (X - center) / half
    n_clipped = int(((np.abs(y) > 1) & valid).sum())
    return np.where(valid, np.clip(y, -1, 1), 0).astype(np.float32), n_clipped
