"""The literature benchmark datasets for time-series generation: Sines, Stocks and Energy.

The protocol is the one of TimeGAN (Yoon, Jarrett, van der Schaar, NeurIPS 2019), reused by most
later papers (e.g. Diffusion-TS, ICLR 2024):

* **Sines**: ``n`` windows of ``dim`` independent features, each ``sin(freq·t + phase)`` with
  freq, phase ~ U(0, 0.1) drawn per window and feature, t = 0 … seq_len − 1, mapped from
  [-1, 1] to [0, 1] by (x + 1) / 2.
* **Stocks** (Google daily prices 2004–2019, 6 columns) and **Energy** (UCI Appliances Energy
  Prediction, 28 columns): each column min–max scaled over the whole series, then every stride-1
  window of ``seq_len`` consecutive rows, shuffled with the seed.

Row order. The reference TimeGAN code reverses the rows of both CSVs before windowing (its comment
says "to make chronological data"), but the distributed files are already oldest first (the
stock file opens at the 2004 listing price, 49.68, and ends at 1207.89 in 2019). Reversing them
therefore makes every window run newest → oldest. By default (``reverse=False``) this module keeps
the file order, so windows run forward in time; ``reverse=True`` reproduces the reference code's
row order exactly. Min–max scaling and the set of windows (up to time reversal) are the same
either way; only order-sensitive metrics such as the predictive score can differ.

The package never reaches for a fixed data folder: pass ``path`` (a CSV file or the folder
holding ``stock_data.csv`` / ``energy_data.csv``) or set ``TRAJSYNTH_TIMEGAN_DATA`` to that folder.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np

ENV_VAR = "TRAJSYNTH_TIMEGAN_DATA"
BENCHMARK_FILES = {"stocks": "stock_data.csv", "energy": "energy_data.csv"}
BENCHMARKS = ("sines", "stocks", "energy")
_ALIASES = {"sine": "sines", "stock": "stocks"}


def sine_windows(n: int = 10000, seq_len: int = 24, dim: int = 5, seed: int = 0) -> np.ndarray:
    """(n, seq_len, dim) float32 sine windows in [0, 1], as in the TimeGAN benchmark."""
    for name, v in (("n", n), ("seq_len", seq_len), ("dim", dim)):
        if int(v) != v or v < 1:
            raise ValueError(f"sine_windows: {name} must be a positive integer, got {v!r}")
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.0, 0.1, size=(n, 1, dim))  # (n, 1, dim)
    phase = rng.uniform(0.0, 0.1, size=(n, 1, dim))  # (n, 1, dim)
    t = np.arange(seq_len, dtype=np.float64)[None, :, None]  # (1, T, 1)
    x = np.sin(freq * t + phase)  # (n, T, dim) in [-1, 1]
    return ((x + 1.0) * 0.5).astype(np.float32)


def _parse_cell(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}: line {line}, column {column!r}: non-numeric value {text!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{path}: line {line}, column {column!r}: value {text!r} is NaN or infinite")
    return value


def read_numeric_csv(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """A CSV with a header row and numeric cells only → ((rows, columns) float64, column names)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no CSV file at {path}")
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise ValueError(f"{path}: empty file or empty header row")
        columns = [h.strip() for h in header]
        rows = []
        for line, row in enumerate(reader, start=2):
            if not row:  # a blank line (e.g. at the end of the file)
                continue
            if len(row) != len(columns):
                raise ValueError(f"{path}: line {line} has {len(row)} fields, the header has {len(columns)}")
            rows.append([_parse_cell(c, path, line, col) for c, col in zip(row, columns, strict=True)])
    if not rows:
        raise ValueError(f"{path}: no data rows below the header")
    return np.asarray(rows, dtype=np.float64), columns


def minmax_scale(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale each column of (rows, F) to [0, 1]; returns (scaled, min (F,), max (F,)).

    A constant column maps to 0 (its range is taken as 1) instead of dividing by zero.
    """
    lo, hi = data.min(axis=0), data.max(axis=0)  # (F,)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (data - lo) / span, lo, hi


def invert_scaling(X: np.ndarray, scaler: dict[str, Any]) -> np.ndarray:
    """Windows in [0, 1] (…, F) back to the original units with the scaler info of a loader."""
    lo = np.asarray(scaler["min"], np.float64)
    hi = np.asarray(scaler["max"], np.float64)
    if np.shape(X)[-1] != lo.shape[0]:
        raise ValueError(f"invert_scaling: X has {np.shape(X)[-1]} features, the scaler {lo.shape[0]}")
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.asarray(X, np.float64) * span + lo


def _windows(data: np.ndarray, seq_len: int, seed: int) -> np.ndarray:
    """Every stride-1 window of (rows, F) data, shuffled: (rows − seq_len + 1, seq_len, F) float32."""
    w = np.lib.stride_tricks.sliding_window_view(data, seq_len, axis=0)  # (N, F, T)
    w = np.transpose(w, (0, 2, 1))  # (N, T, F)
    order = np.random.default_rng(seed).permutation(len(w))
    return np.ascontiguousarray(w[order], dtype=np.float32)


def load_csv_windows(
    path: str | Path, seq_len: int = 24, seed: int = 0, reverse: bool = False
) -> tuple[np.ndarray, dict[str, Any]]:
    """A numeric CSV → (windows (N, seq_len, F) float32 in [0, 1], scaler info).

    Each column is min–max scaled over the whole series, then every stride-1 window is cut and
    the windows are shuffled with ``seed``. ``reverse`` flips the rows first, as the reference
    TimeGAN code does (see the module docstring). The scaler info holds ``columns``, per-column
    ``min`` and ``max`` (:func:`invert_scaling` undoes the scaling), ``source`` and ``reversed``.
    """
    if int(seq_len) != seq_len or seq_len < 1:
        raise ValueError(f"load_csv_windows: seq_len must be a positive integer, got {seq_len!r}")
    data, columns = read_numeric_csv(path)
    if len(data) < seq_len:
        raise ValueError(f"{path}: {len(data)} data rows, fewer than seq_len = {seq_len}: no window fits")
    if reverse:
        data = data[::-1]
    scaled, lo, hi = minmax_scale(data)
    scaler = {"columns": columns, "min": lo, "max": hi, "source": str(path), "reversed": bool(reverse)}
    return _windows(scaled, int(seq_len), seed), scaler


def _resolve_csv(name: str, path: str | Path | None) -> Path:
    """The CSV of a benchmark: ``path`` (file or folder), else the folder in ``$TRAJSYNTH_TIMEGAN_DATA``."""
    filename = BENCHMARK_FILES[name]
    looked = []
    if path is not None:
        p = Path(path)
        candidate = p / filename if p.is_dir() else p
        looked.append(f"{candidate} (from path=)")
    elif os.environ.get(ENV_VAR):
        candidate = Path(os.environ[ENV_VAR]) / filename
        looked.append(f"{candidate} (from ${ENV_VAR})")
    else:
        candidate = None
        looked.append(f"nowhere: no path given and ${ENV_VAR} is not set")
    if candidate is not None and candidate.is_file():
        return candidate
    raise FileNotFoundError(
        f"{name} benchmark: {filename} not found; looked at {', '.join(looked)}. Pass path= (the CSV or "
        f"the folder holding it) or set {ENV_VAR} to the folder holding {' and '.join(BENCHMARK_FILES.values())}."
    )


def load_benchmark(
    name: str, path: str | Path | None = None, seed: int = 0, seq_len: int = 24, reverse: bool = False
) -> tuple[np.ndarray, dict[str, Any]]:
    """``sines`` | ``stocks`` | ``energy`` → (X (N, seq_len, F) float32 in [0, 1], scaler info).

    Sines: 10,000 windows of 5 features (``path`` is ignored; the scaler maps back to [-1, 1]).
    Stocks / Energy: :func:`load_csv_windows` on the CSV found by ``path`` or ``$TRAJSYNTH_TIMEGAN_DATA``.
    """
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    if key == "sines":
        X = sine_windows(10000, seq_len, 5, seed)
        scaler = {"columns": [f"sine{k}" for k in range(5)], "min": np.full(5, -1.0), "max": np.full(5, 1.0),
                  "source": "generated", "reversed": False}
        return X, scaler
    return load_csv_windows(_resolve_csv(key, path), seq_len=seq_len, seed=seed, reverse=reverse)
