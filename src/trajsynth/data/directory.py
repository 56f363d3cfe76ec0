"""The processed data directory ("V4 format") on disk: layout, writing, reading.

Layout (N = movements in a split, T = max_seq_len)::

    X_{split}.npy            (N, T, 8) float32, zero past each length
    C_{split}.npy            (N,) float32 condition in [-1, 1]
    L_{split}.npy            (N,) int64 lengths in [1, T]
    paths_{split}.npz        points (P, 3) float32 (t_ms, x_px, y_px) relative to the start,
                             offsets (N+1,) int64, start_px (N, 2), user / session / action (N,)
    A_{split}.npy            optional (N,) int64 activity label per sequence (names: meta.json activity_names)
    D_{split}.npy            optional (N,) int64 domain label per sequence (names: meta.json domain_names)
    normalization_params.json  (and .npy, the same numbers as a structured array)
    meta.json                sources, users per split, counts, feature names, versions
"""

from __future__ import annotations

import json
import struct
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..utils import atomic
from .features import NormalizationParams

SPLITS = ("train", "val", "test")
DATA_FORMAT = "trajsynth-v4"
SERIES_KIND = "series"  # meta.json "kind" of labelled sensor series (no pixel paths, no mouse scaling)


def is_series(meta: dict) -> bool:
    return isinstance(meta, dict) and meta.get("kind") == SERIES_KIND


@dataclass
class SplitArrays:
    """One split in memory."""

    X: np.ndarray  # (N, T, 8) float32
    C: np.ndarray  # (N,) float32
    L: np.ndarray  # (N,) int64
    points: np.ndarray  # (P, 3) float32
    offsets: np.ndarray  # (N+1,) int64
    start_px: np.ndarray  # (N, 2) float32
    user: np.ndarray  # (N,) str
    session: np.ndarray  # (N,) str
    action: np.ndarray  # (N,) str
    activity: np.ndarray | None = None  # (N,) int64 labels, when the directory has them
    domain: np.ndarray | None = None  # (N,) int64

    def __len__(self) -> int:
        return len(self.L)

    def path(self, i: int) -> np.ndarray:
        """Raw (n, 3) path of movement i, relative to its start."""
        return self.points[self.offsets[i] : self.offsets[i + 1]]


def split_users(users: list[str], val_frac: float, test_frac: float, seed: int) -> dict[str, list[str]]:
    """Deterministic user-level split: every user lands in exactly one split."""
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError("val_frac and test_frac must be in [0, 1) and sum to less than 1")
    order = sorted(set(users))
    if len(order) < 3:
        raise ValueError(f"need at least 3 users for a user-disjoint split, found {len(order)}")
    rng = np.random.default_rng(seed)
    order = [order[i] for i in rng.permutation(len(order))]
    n_val = max(1, round(val_frac * len(order))) if val_frac > 0 else 0
    n_test = max(1, round(test_frac * len(order))) if test_frac > 0 else 0
    return {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }


def params_to_structured(p: NormalizationParams) -> np.ndarray:
    d = p.to_dict()
    return np.array([tuple(float(v) for v in d.values())], dtype=[(k, "f8") for k in d])


def write_data_dir(
    out_dir: str | Path, splits: dict[str, SplitArrays], params: NormalizationParams | None,
    meta: dict, overwrite: bool = False,
) -> Path:
    """Write all splits atomically: the directory appears complete or not at all (``params`` None: series data)."""
    with atomic.atomic_directory(out_dir, overwrite=overwrite) as tmp:
        for name, s in splits.items():
            atomic.save_npy(tmp / f"X_{name}.npy", s.X.astype(np.float32))
            atomic.save_npy(tmp / f"C_{name}.npy", s.C.astype(np.float32))
            atomic.save_npy(tmp / f"L_{name}.npy", s.L.astype(np.int64))
            atomic.save_npz(
                tmp / f"paths_{name}.npz", points=s.points.astype(np.float32),
                offsets=s.offsets.astype(np.int64), start_px=s.start_px.astype(np.float32),
                user=s.user.astype(str), session=s.session.astype(str), action=s.action.astype(str),
            )
            for key, labels in (("A", s.activity), ("D", s.domain)):
                if labels is not None:
                    atomic.save_npy(tmp / f"{key}_{name}.npy", labels.astype(np.int64))
        if params is not None:
            atomic.write_json(tmp / "normalization_params.json", params.to_dict())
            atomic.save_npy(tmp / "normalization_params.npy", params_to_structured(params))
        atomic.write_json(tmp / "meta.json", meta)
    return Path(out_dir)


def require_files(data_dir: str | Path, names: list[str]) -> Path:
    """``data_dir`` as a Path, after checking that it is a directory holding every file in ``names``."""
    d = Path(data_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"data directory {d} does not exist" if not d.exists() else
                                f"{d} is a file, not a data directory")
    missing = [n for n in names if not (d / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{d} is not a data directory: {', '.join(missing)} "
                                f"{'is' if len(missing) == 1 else 'are'} missing (make one with `trajsynth "
                                "preprocess RAW_DIR OUT_DIR`)")
    return d


def load_params(data_dir: str | Path) -> NormalizationParams:
    path = require_files(data_dir, ["normalization_params.json"]) / "normalization_params.json"
    try:
        return NormalizationParams.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: {e}") from None


def load_meta(data_dir: str | Path) -> dict:
    path = require_files(data_dir, ["meta.json"]) / "meta.json"
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


# What numpy raises for a damaged .npy / .npz: a bad header is parsed as a Python literal (SyntaxError,
# tokenize.TokenError), a short file is a ValueError or EOFError; a damaged archive is a BadZipFile, a zlib or
# struct error, or, when its flag bits changed, a NotImplementedError (compression) or RuntimeError (encryption).
_READ_ERRORS = (ValueError, OSError, EOFError, KeyError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile,
                zlib.error, struct.error, NotImplementedError, RuntimeError)
_PATH_KEYS = ("points", "offsets", "start_px", "user", "session", "action")


def _unreadable(path: Path, what: str, e: BaseException) -> ValueError:
    detail = " ".join(str(e).split())[:200]
    return ValueError(f"{path}: cannot be read as {what} ({type(e).__name__}: {detail})")


def load_array(path: str | Path, mmap: bool = False) -> np.ndarray:
    """One ``.npy`` array (no pickle); FileNotFoundError or a one-line ValueError naming the file.

    ``mmap`` maps the file instead of reading it: a damaged header that claims more data than the
    file holds is then an error, not an allocation of that size.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except _READ_ERRORS as e:
        raise _unreadable(path, "a .npy array", e) from None


def load_arrays(path: str | Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of one ``.npz`` archive, with the errors of :func:`load_array`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in keys}
    except _READ_ERRORS as e:
        raise _unreadable(path, f"an .npz archive of {', '.join(keys)}", e) from None


def _check_shapes(d: Path, split: str, arr: dict[str, np.ndarray]) -> None:
    """X (N, T, F), C (N,) and L (N,) of one split, or a ValueError naming the file."""
    X = arr["X"]
    if X.ndim != 3:
        raise ValueError(f"{d / f'X_{split}.npy'}: shape {X.shape}, expected (N, max_seq_len, features)")
    for k in ("C", "L"):
        if arr[k].shape != (len(X),):
            raise ValueError(f"{d / f'{k}_{split}.npy'}: shape {arr[k].shape}, expected ({len(X)},) to match X")
    if X.dtype.kind not in "fiu" or arr["C"].dtype.kind not in "fiu" or arr["L"].dtype.kind not in "iu":
        raise ValueError(f"{d}: split {split!r} has non-numeric arrays (X {X.dtype}, C {arr['C'].dtype}, "
                         f"L {arr['L'].dtype}; L must be integers)")


def load_split(data_dir: str | Path, split: str, with_paths: bool = True) -> SplitArrays:
    """Read one split (no pickle); a missing, unreadable or misshapen file is an error naming it."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    d = require_files(data_dir, [f"{k}_{split}.npy" for k in ("X", "C", "L")])
    arr = {k: np.array(load_array(d / f"{k}_{split}.npy", mmap=True)) for k in ("X", "C", "L")}
    _check_shapes(d, split, arr)
    n = len(arr["L"])
    if with_paths and (d / f"paths_{split}.npz").exists():
        extra = load_arrays(d / f"paths_{split}.npz", _PATH_KEYS)
        _check_paths(d / f"paths_{split}.npz", extra, n)
    else:
        extra = dict(
            points=np.zeros((0, 3), np.float32), offsets=np.zeros(n + 1, np.int64),
            start_px=np.zeros((n, 2), np.float32),
            **{k: np.full(n, "", dtype=str) for k in ("user", "session", "action")},
        )
    return SplitArrays(**arr, **extra, activity=load_labels(d, "A", split, n), domain=load_labels(d, "D", split, n))


LABEL_FILES = {"A": "activity", "D": "domain"}


def load_labels(d: Path, key: str, split: str, n: int) -> np.ndarray | None:
    """``{key}_{split}.npy`` (N,) non-negative integers, None when absent; a ValueError naming a bad file."""
    path = d / f"{key}_{split}.npy"
    if not path.exists():
        return None
    a = load_array(path)
    if a.shape != (n,) or a.dtype.kind not in "iu" or (n and a.min() < 0):
        raise ValueError(f"{path}: {LABEL_FILES[key]} labels must be ({n},) non-negative integers, "
                         f"got shape {a.shape} dtype {a.dtype}")
    return a.astype(np.int64)


def _check_paths(path: Path, z: dict[str, np.ndarray], n: int) -> None:
    """The arrays of ``paths_{split}.npz`` fit together and hold ``n`` movements, or a ValueError naming it."""
    offsets = z["offsets"]
    ok = (
        z["points"].ndim == 2 and z["points"].shape[1:] == (3,) and offsets.shape == (n + 1,)
        and offsets.dtype.kind in "iu" and z["start_px"].shape == (n, 2)
        and all(z[k].shape == (n,) for k in ("user", "session", "action"))
    )
    if ok and n:
        ok = offsets[0] == 0 and offsets[-1] == len(z["points"]) and bool(np.all(np.diff(offsets) >= 0))
    if not ok:
        raise ValueError(f"{path}: points, offsets, start_px, user, session, action do not describe {n} movements")
