"""Checks of a processed data directory, with a report that names file and problem."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .directory import LABEL_FILES, SPLITS, is_series, load_array, load_arrays, load_labels
from .features import N_FEATURES, NormalizationParams

_TOL = 1e-6


@dataclass
class ValidationReport:
    data_dir: str
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, file: str, msg: str) -> None:
        self.errors.append(f"{file}: {msg}")

    def format(self) -> str:
        lines = [f"Data directory {self.data_dir}"]
        lines += [f"  ok    {n}" for n in self.notes]
        lines += [f"  ERROR {e}" for e in self.errors]
        lines.append("VALID" if self.ok else f"INVALID ({len(self.errors)} problem(s))")
        return "\n".join(lines)


def _load(path: Path, report: ValidationReport) -> np.ndarray | None:
    if not path.exists():
        report.error(path.name, "missing")
        return None
    try:
        return load_array(path, mmap=True)
    except (ValueError, OSError) as e:
        report.error(path.name, str(e).removeprefix(f"{path}: "))
        return None


def _check_X(name: str, X: np.ndarray, r: ValidationReport, n_features: int = N_FEATURES) -> bool:
    if X.ndim != 3 or X.shape[2] != n_features:
        r.error(name, f"shape {X.shape}, expected (N, max_seq_len, {n_features})")
        return False
    if X.dtype != np.float32:
        r.error(name, f"dtype {X.dtype}, expected float32")
        if X.dtype.kind not in "fiu":  # not numbers: no value check can run
            return False
    finite = np.isfinite(X)
    if not finite.all():
        n_bad = int((~finite).any(axis=(1, 2)).sum())
        first = int(np.flatnonzero((~finite).any(axis=(1, 2)))[0])
        r.error(name, f"{n_bad} sequence(s) hold NaN or Inf (first: index {first})")
    elif X.size and np.abs(X).max() > 1 + _TOL:
        r.error(name, f"values outside [-1, 1] (max |x| = {float(np.abs(X).max()):.4g})")
    return True


def _check_lengths(name: str, L: np.ndarray, T: int, r: ValidationReport) -> bool:
    if L.ndim != 1:
        r.error(name, f"shape {L.shape}, expected (N,)")
        return False
    if not np.issubdtype(L.dtype, np.integer):
        r.error(name, f"dtype {L.dtype}, expected an integer type")
        return False
    if len(L) and (L.min() < 1 or L.max() > T):
        r.error(name, f"lengths must lie in [1, {T}], found [{int(L.min())}, {int(L.max())}]")
        return False
    return True


def _check_padding(name: str, X: np.ndarray, L: np.ndarray, r: ValidationReport) -> None:
    past = np.arange(X.shape[1])[None, :] >= L[:, None]  # (N, T)
    nonzero = (np.asarray(X) != 0).any(axis=2) & past
    if nonzero.any():
        first = int(np.flatnonzero(nonzero.any(axis=1))[0])
        r.error(name, f"{int(nonzero.any(axis=1).sum())} sequence(s) are not zero past their length "
                f"(first: index {first}, length {int(L[first])})")


def _check_condition(name: str, C: np.ndarray, n: int, r: ValidationReport) -> None:
    if C.shape != (n,):
        r.error(name, f"shape {C.shape}, expected ({n},) to match X")
        return
    if not np.issubdtype(C.dtype, np.floating):
        r.error(name, f"dtype {C.dtype}, expected float32")
        if C.dtype.kind not in "iu":  # not numbers: no value check can run
            return
    if not np.isfinite(C).all():
        r.error(name, f"{int((~np.isfinite(C)).sum())} value(s) are NaN or Inf")
    elif len(C) and np.abs(C).max() > 1 + _TOL:
        r.error(name, f"values outside [-1, 1] (max |c| = {float(np.abs(C).max()):.4g})")


def _check_paths(d: Path, split: str, L: np.ndarray, r: ValidationReport) -> set[str]:
    name = f"paths_{split}.npz"
    if not (d / name).exists():
        r.error(name, "missing")
        return set()
    try:
        z = load_arrays(d / name, ("points", "offsets", "user"))
    except (ValueError, OSError) as e:
        r.error(name, f"{str(e).removeprefix(f'{d / name}: ')}; needs points, offsets, user arrays")
        return set()
    points, offsets, users = z["points"], z["offsets"], z["user"]
    if points.ndim != 2 or points.shape[1] != 3:
        r.error(name, f"points shape {points.shape}, expected (P, 3)")
    elif offsets.shape != (len(L) + 1,) or offsets[-1] != len(points) or not np.array_equal(np.diff(offsets), L):
        r.error(name, "offsets do not match L (each path must have L[i] points)")
    if users.shape != (len(L),) or users.dtype.kind not in "US":
        r.error(name, f"user array has shape {users.shape} and dtype {users.dtype}, expected ({len(L)},) strings")
        return set()
    return set(users.tolist())


def _check_labels(d: Path, split: str, n: int, names: dict, r: ValidationReport) -> None:
    """Optional A_ / D_ label files: (N,) integers in [0, number of names in meta.json)."""
    for key, what in LABEL_FILES.items():
        path = d / f"{key}_{split}.npy"
        if not path.exists():
            continue
        try:
            a = load_labels(d, key, split, n)
        except ValueError as e:
            r.error(path.name, str(e).removeprefix(f"{path}: "))
            continue
        k = len(names.get(what) or [])
        if not k:
            r.error(path.name, f"meta.json has no {what}_names list for these labels")
        elif n and a.max() >= k:
            r.error(path.name, f"label {int(a.max())} but meta.json names only {k} {what} classes")


def _check_split(d: Path, split: str, r: ValidationReport, T_seen: list[int], meta: dict) -> set[str]:
    X, C, L = (_load(d / f"{k}_{split}.npy", r) for k in ("X", "C", "L"))
    series = is_series(meta)
    n_features = len(meta.get("feature_names") or []) if series else N_FEATURES
    if X is None or C is None or L is None or not _check_X(f"X_{split}.npy", X, r, n_features):
        return set()
    n, T = X.shape[0], X.shape[1]
    T_seen.append(T)
    if L.shape[:1] != (n,):
        r.error(f"L_{split}.npy", f"has {L.shape[0] if L.ndim else 0} entries but X_{split}.npy has {n}")
    elif _check_lengths(f"L_{split}.npy", L, T, r):
        _check_padding(f"X_{split}.npy", X, L, r)
        users = set() if series else _check_paths(d, split, L, r)
        _check_condition(f"C_{split}.npy", C, n, r)
        _check_labels(d, split, n, {k: meta.get(f"{k}_names") for k in LABEL_FILES.values()}, r)
        span = f"{int(L.min())}-{int(L.max())}" if n else "none"
        r.notes.append(f"{split}: {n} sequences, max_seq_len {T}, lengths {span}")
        return users
    _check_condition(f"C_{split}.npy", C, n, r)
    return set()


def _check_params(d: Path, r: ValidationReport) -> None:
    path = d / "normalization_params.json"
    if not path.exists():
        r.error(path.name, "missing")
        return
    try:
        p = NormalizationParams.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        r.error(path.name, str(e))
        return
    values = [v for k, v in p.to_dict().items() if k != "format_version"]
    if not all(np.isfinite(values)) or min(values) <= 0:
        r.error(path.name, "all scales must be finite and positive")
    else:
        r.notes.append("normalization_params.json readable")


def _check_meta(d: Path, users_by_split: dict[str, set[str]], r: ValidationReport) -> None:
    path = d / "meta.json"
    if not path.exists():
        r.error(path.name, "missing")
        return
    try:
        meta = json.loads(path.read_text())
        declared = {s: set(meta["users"][s]) for s in SPLITS}
    except (ValueError, KeyError, TypeError) as e:  # ValueError: not JSON, or not UTF-8
        r.error(path.name, f"needs a 'users' entry with train/val/test lists ({e})")
        return
    for s in SPLITS:
        undeclared = users_by_split.get(s, set()) - declared[s]
        if undeclared:
            r.error(f"paths_{s}.npz", f"users {sorted(undeclared)[:5]} are not listed for {s} in meta.json")
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            shared = (declared[a] | users_by_split.get(a, set())) & (declared[b] | users_by_split.get(b, set()))
            if shared:
                r.error(path.name, f"users {sorted(shared)[:5]} appear in both {a} and {b}")
    if not r.errors:
        r.notes.append("splits are user-disjoint")


def _read_meta(d: Path) -> dict:
    """meta.json as a dict, or {} when it is missing or unreadable (its own check reports that)."""
    try:
        meta = json.loads((d / "meta.json").read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def validate_data_dir(data_dir: str | Path) -> ValidationReport:
    """Run every check; never raises for bad content (only the report says)."""
    d = Path(data_dir)
    r = ValidationReport(str(d))
    if not d.is_dir():
        r.error(str(d), "not a directory")
        return r
    T_seen: list[int] = []
    meta = _read_meta(d)
    users = {s: _check_split(d, s, r, T_seen, meta) for s in SPLITS}
    if len(set(T_seen)) > 1:
        r.error("X_*.npy", f"splits disagree on max_seq_len: {T_seen}")
    if not is_series(meta):
        _check_params(d, r)
    _check_meta(d, users, r)
    return r
