"""Shared fixtures: real-data paths (skipped when absent) and small synthetic data."""

from __future__ import annotations

from pathlib import Path

import pytest

from trajsynth.data.preprocess import PreprocessConfig, build_data_dir
from trajsynth.data.synthetic import synthetic_segments, write_sapimouse_log

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """The embedded data dir is cached per test session, never in the user's home."""
    monkeypatch.setenv("TRAJSYNTH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _shared_dataset(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"real dataset {path} is absent (it lives in ../shared/datasets beside the repository)")
    return path


@pytest.fixture(scope="session")
def sapimouse_raw() -> Path:
    return _shared_dataset("sapimouse")


@pytest.fixture(scope="session")
def balabit_raw() -> Path:
    return _shared_dataset("balabit")


@pytest.fixture
def raw_dir(tmp_path) -> Path:
    """Six fake users, one SapiMouse-style session each (two gzipped)."""
    root = tmp_path / "raw"
    segs = synthetic_segments(120, seed=3, n_users=6)
    for u in range(6):
        suffix = ".csv.gz" if u < 2 else ".csv"
        write_sapimouse_log(root / f"user{u}" / f"session_1{suffix}", [s for s in segs if s.user == f"synth{u}"])
    return root


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("small") / "data"
    build_data_dir(synthetic_segments(200, seed=5, n_users=6), out, PreprocessConfig(), {}, overwrite=False)
    return out
