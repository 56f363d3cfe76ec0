"""The literature benchmark datasets: sines, CSV windows, benchmark lookup and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trajsynth.data.timeseries import (
    ENV_VAR,
    invert_scaling,
    load_benchmark,
    load_csv_windows,
    sine_windows,
)

TIMEGAN = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "timegan"


def write_csv(path: Path, rows: list[str], header: str = "a,b,c") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture
def ramp_csv(tmp_path) -> Path:
    """40 rows: a = 0..39, b = 100 − 2·a, c constant 5 (a zero-range column)."""
    return write_csv(tmp_path / "ramp.csv", [f"{i},{100 - 2 * i},5" for i in range(40)])


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


# --------------------------------------------------------------------------- sines


def test_sine_windows_follow_the_formula():
    X = sine_windows(500, seq_len=24, dim=5, seed=3)
    assert X.shape == (500, 24, 5) and X.dtype == np.float32
    assert X.min() >= 0.0 and X.max() <= 1.0
    # Up to t = 10 the argument stays below π/2, so arcsin recovers freq·t + phase exactly.
    arg = np.arcsin(2.0 * X[:, :11].astype(np.float64) - 1.0)  # (N, 11, 5)
    phase, freq = arg[:, 0], arg[:, 1] - arg[:, 0]
    assert phase.min() >= -1e-3 and phase.max() <= 0.1 + 1e-3
    assert freq.min() >= -1e-3 and freq.max() <= 0.1 + 1e-3
    t = np.arange(11)[None, :, None]
    assert np.allclose(arg, phase[:, None] + freq[:, None] * t, atol=2e-3)
    assert freq.std() > 0.02  # drawn per window and feature, not shared


def test_sine_windows_are_seeded():
    assert np.array_equal(sine_windows(50, seed=1), sine_windows(50, seed=1))
    assert not np.array_equal(sine_windows(50, seed=1), sine_windows(50, seed=2))
    with pytest.raises(ValueError, match="seq_len"):
        sine_windows(10, seq_len=0)


# --------------------------------------------------------------------------- CSV windows


def test_csv_windows_are_scaled_consecutive_rows(ramp_csv):
    X, scaler = load_csv_windows(ramp_csv, seq_len=8, seed=0)
    assert X.shape == (40 - 8 + 1, 8, 3) and X.dtype == np.float32
    assert scaler["columns"] == ["a", "b", "c"] and scaler["reversed"] is False
    assert np.allclose(scaler["min"], [0, 22, 5]) and np.allclose(scaler["max"], [39, 100, 5])
    assert X[..., :2].min() == 0.0 and X[..., :2].max() == 1.0 and np.all(X[..., 2] == 0.0)
    raw = invert_scaling(X, scaler)  # (N, 8, 3) back in file units
    starts = raw[:, 0, 0]
    assert sorted(np.round(starts).astype(int)) == list(range(33))  # every window once
    assert not np.all(np.diff(starts) > 0)  # shuffled
    assert np.allclose(raw[:, :, 0], starts[:, None] + np.arange(8), atol=1e-4)  # oldest → newest
    assert np.allclose(raw[:, :, 1], 100 - 2 * raw[:, :, 0], atol=1e-4)


def test_csv_windows_seed_and_reverse(ramp_csv):
    a, _ = load_csv_windows(ramp_csv, seq_len=8, seed=0)
    b, _ = load_csv_windows(ramp_csv, seq_len=8, seed=0)
    c, _ = load_csv_windows(ramp_csv, seq_len=8, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    r, scaler = load_csv_windows(ramp_csv, seq_len=8, seed=0, reverse=True)
    assert scaler["reversed"] is True
    assert np.all(np.diff(r[:, :, 0], axis=1) < 0)  # the TimeGAN code's row order: newest → oldest


@pytest.mark.parametrize("rows,match", [
    (["1,2,3", "4,x,6"], "line 3, column 'b': non-numeric value 'x'"),
    (["1,2,3", "4,,6"], "line 3, column 'b': non-numeric"),
    (["1,2,3", "4,nan,6"], "line 3, column 'b'.*NaN"),
    (["1,2,3", "4,5"], "line 3 has 2 fields"),
    ([f"{i},1,2" for i in range(5)], "5 data rows, fewer than seq_len = 8"),
    ([], "no data rows"),
])
def test_csv_errors_name_the_file(tmp_path, rows, match):
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(ValueError, match=match) as err:
        load_csv_windows(path, seq_len=8)
    assert "bad.csv" in str(err.value)


def test_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.csv"):
        load_csv_windows(tmp_path / "nothing.csv")


# --------------------------------------------------------------------------- load_benchmark


def test_benchmark_sines(no_env):
    X, scaler = load_benchmark("sines", seed=0)
    assert X.shape == (10000, 24, 5) and X.dtype == np.float32
    back = invert_scaling(X, scaler)  # (x + 1) / 2 undone: sin(freq·t + phase)
    assert back[:, 0].min() >= -1e-6 and back[:, 0].max() <= np.sin(0.1) + 1e-6  # t = 0: sin(phase)


def test_benchmark_lookup_errors(no_env, tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark 'weather'"):
        load_benchmark("weather")
    with pytest.raises(FileNotFoundError, match=f"stock_data.csv not found.*{ENV_VAR} is not set.*path="):
        load_benchmark("stocks")
    with pytest.raises(FileNotFoundError, match=f"energy_data.csv.*{tmp_path}"):
        load_benchmark("energy", path=tmp_path)


def test_benchmark_from_env_or_path(monkeypatch, tmp_path, ramp_csv):
    (tmp_path / "stock_data.csv").write_text(ramp_csv.read_text())
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    X, scaler = load_benchmark("stocks", seed=0)
    assert X.shape == (40 - 24 + 1, 24, 3) and scaler["source"].endswith("stock_data.csv")
    Y, _ = load_benchmark("stock", path=ramp_csv, seed=0)  # alias, explicit file wins over the variable
    assert np.array_equal(X, Y)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match=f"elsewhere.*from \\${ENV_VAR}"):
        load_benchmark("stocks")


@pytest.mark.parametrize("name,rows,features", [("stocks", 3685, 6), ("energy", 19734, 28)])
def test_real_benchmarks(name, rows, features):
    if not TIMEGAN.is_dir():
        pytest.skip(f"../shared/datasets absent: no {TIMEGAN}")
    X, scaler = load_benchmark(name, TIMEGAN, seed=0)
    assert X.shape == (rows - 24 + 1, 24, features)
    assert X.min() == 0.0 and X.max() == 1.0 and np.isfinite(X).all()
    data = np.loadtxt(TIMEGAN / f"{'stock' if name == 'stocks' else name}_data.csv", delimiter=",", skiprows=1)
    assert np.allclose(scaler["min"], data.min(0)) and np.allclose(scaler["max"], data.max(0))
    raw = invert_scaling(X[0], scaler)  # (24, F): must be 24 consecutive file rows, in file order
    start = int(np.argmin(np.abs(data - raw[0]).sum(1)))
    assert np.allclose(data[start : start + 24], raw, rtol=1e-5, atol=1e-3 * np.abs(data).max(0))
