"""Shared fixtures and helpers.

* Real datasets live in ``../shared/datasets`` beside the repository; every test that
  needs them goes through :func:`shared_dataset` (or the fixtures below) and is skipped
  with a clear reason when they are absent.
* Synthetic data is written into ``tmp_path``: raw SapiMouse-style logs built with
  :func:`trajsynth.data.synthetic.write_sapimouse_log` and a small processed data
  directory built from them with :func:`trajsynth.data.preprocess.preprocess`.
* The embedded-data cache (``TRAJSYNTH_CACHE``) always points into the test session's
  temporary folder, never into the user's home.
* Property-based (fuzz) tests run under a Hypothesis profile: ``ci`` by default (a few hundred
  cases per test, derandomized so every run draws the same cases), ``thorough`` when
  ``HYPOTHESIS_PROFILE=thorough`` (ten times more cases, random draws). Each fuzz case calls
  :func:`fuzzing.count_case`; the session ends with ``fuzz cases run: N``.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from fuzzing import FUZZ_COUNTS
from hypothesis import HealthCheck, Phase, settings

from trajsynth.data.preprocess import PreprocessConfig, build_data_dir, preprocess
from trajsynth.data.raw import BUTTONS, STATES, EventLog
from trajsynth.data.synthetic import synthetic_segments, write_sapimouse_log

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared" / "datasets"

SAPI_HEADER = "client timestamp,button,state,x,y"
BALABIT_HEADER = "record timestamp,client timestamp,button,state,x,y"

# The synthetic raw directory of the ``raw_dir`` fixture.
RAW_USERS = 6
RAW_SEGMENTS = 120


# --------------------------------------------------------------------------- fuzzing

_FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
                HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, database=None,
                          print_blob=True, suppress_health_check=_FUZZ_HEALTH)
settings.register_profile("thorough", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=_FUZZ_HEALTH)
# Triage: the ci cases without shrinking, so every failing property reports at once and fast.
settings.register_profile("triage", parent=settings.get_profile("ci"),
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_terminal_summary(terminalreporter):
    """The number of fuzz cases run, per property and in all (CI's log shows it)."""
    if not FUZZ_COUNTS:
        return
    terminalreporter.write_sep("-", "fuzzing")
    for test, n in sorted(FUZZ_COUNTS.items()):
        terminalreporter.write_line(f"{n:6d}  {test}")
    terminalreporter.write_line(f"fuzz cases run: {sum(FUZZ_COUNTS.values())} "
                                f"(profile {settings._current_profile})")


# --------------------------------------------------------------------------- environment


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """The embedded data dir is cached per test session, never in the user's home."""
    monkeypatch.setenv("TRAJSYNTH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")


# --------------------------------------------------------------------------- real datasets


def shared_dataset(name: str) -> Path:
    """``../shared/datasets/<name>``, or skip the test when it is absent."""
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"real dataset {path} is absent (it lives in ../shared/datasets beside the repository)")
    return path


_shared_dataset = shared_dataset  # older name, kept for test modules that use it


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The shared datasets folder; skips when it does not exist."""
    if not SHARED.is_dir():
        pytest.skip(f"shared datasets folder {SHARED} is absent (expected beside the repository)")
    return SHARED


@pytest.fixture(scope="session")
def sapimouse_raw() -> Path:
    return shared_dataset("sapimouse")


@pytest.fixture(scope="session")
def balabit_raw() -> Path:
    return shared_dataset("balabit")


# --------------------------------------------------------------------------- hand-written logs


def write_csv(path: Path, rows: list[str], header: str = SAPI_HEADER, gz: bool | None = None) -> Path:
    """A CSV log with ``header`` and ``rows``; gzipped when ``gz`` (default: by the suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join([header, *rows]) + "\n"
    if gz is None:
        gz = path.name.endswith(".gz")
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def movement_rows(t0: int = 0, x0: int = 100, y0: int = 100, n: int = 6, dx: int = 40, dy: int = 0,
                  step: int = 17, button: str = "Left") -> list[str]:
    """Released, ``n`` moves, Pressed: a straight movement of ``n * (dx, dy)`` px, one event per ``step`` ms."""
    rows = [f"{t0},{button},Released,{x0},{y0}"]
    rows += [f"{t0 + step * (i + 1)},NoButton,Move,{x0 + dx * (i + 1)},{y0 + dy * (i + 1)}" for i in range(n)]
    rows.append(f"{t0 + step * (n + 1)},{button},Pressed,{x0 + dx * n},{y0 + dy * n}")
    return rows


def make_log(events: list[tuple]) -> EventLog:
    """An EventLog from ``(t_ms, button_name, state_name, x, y)`` tuples."""
    if not events:
        f, i = np.zeros(0, np.float64), np.zeros(0, np.int8)
        return EventLog(f, f.copy(), f.copy(), i, i.copy())
    t, b, s, x, y = zip(*events, strict=True)
    return EventLog(
        np.asarray(t, np.float64), np.asarray(x, np.float64), np.asarray(y, np.float64),
        np.asarray([BUTTONS[v] for v in b], np.int8), np.asarray([STATES[v] for v in s], np.int8),
    )


def movement_events(t0: float = 0, x0: float = 100, y0: float = 100, n: int = 6, dx: float = 40,
                    dy: float = 0, step: float = 17, button: str = "Left") -> list[tuple]:
    """Same movement as :func:`movement_rows`, as event tuples for :func:`make_log`."""
    ev = [(t0, button, "Released", x0, y0)]
    ev += [(t0 + step * (i + 1), "NoButton", "Move", x0 + dx * (i + 1), y0 + dy * (i + 1)) for i in range(n)]
    ev.append((t0 + step * (n + 1), button, "Pressed", x0 + dx * n, y0 + dy * n))
    return ev


# --------------------------------------------------------------------------- synthetic raw dirs


def write_raw_dir(root: Path, n: int = RAW_SEGMENTS, seed: int = 3, n_users: int = RAW_USERS) -> Path:
    """``n_users`` fake users, one SapiMouse-style session each; the first two are gzipped."""
    segs = synthetic_segments(n, seed=seed, n_users=n_users)
    for u in range(n_users):
        suffix = ".csv.gz" if u < 2 else ".csv"
        write_sapimouse_log(root / f"user{u}" / f"session_1{suffix}", [s for s in segs if s.user == f"synth{u}"])
    return root


@pytest.fixture
def raw_dir(tmp_path) -> Path:
    """Six fake users, one SapiMouse-style session each (two gzipped), 120 movements in all."""
    return write_raw_dir(tmp_path / "raw")


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory) -> Path:
    """A processed data dir (max_seq_len 100) from 200 synthetic movements of 6 users, via ``preprocess``.

    Shared by many tests: never modify it in place (copy it first).
    """
    base = tmp_path_factory.mktemp("small")
    raw = write_raw_dir(base / "raw", n=200, seed=5, n_users=6)
    preprocess(raw, base / "data", PreprocessConfig(), workers=1, progress=False)
    return base / "data"


def synthetic_data_dir(out: Path, n: int, seed: int, max_len: int) -> Path:
    """A processed data dir at ``out`` from ``n`` synthetic movements of 6 users (20–400 px), long ones resampled."""
    segs = synthetic_segments(n, seed=seed, d_range=(20, 400), n_users=6)
    build_data_dir(segs, out, PreprocessConfig(max_seq_len=max_len, long_policy="resample"), {}, overwrite=False)
    return out


MODEL_MAX_LEN = 40  # sequence length of ``model_data_dir``


@pytest.fixture(scope="session")
def model_data_dir(tmp_path_factory) -> Path:
    """A processed data dir (max_seq_len 40) of 300 synthetic movements of 6 users, for model tests.

    Shared by many tests: never modify it in place (copy it first).
    """
    return synthetic_data_dir(tmp_path_factory.mktemp("model_data") / "data", 300, 1, MODEL_MAX_LEN)


@pytest.fixture(scope="session")
def procedural_ckpt(tmp_path_factory) -> Path:
    """A finished ``procedural`` model (tiny) fitted on the embedded sample: distance-only, paths rotated onto ends."""
    from trajsynth.data.embedded import embedded_data_dir
    from trajsynth.data.train_data import load_train_data
    from trajsynth.training.loop import Trainer
    from trajsynth.training.setup import build_run_config

    data = load_train_data(embedded_data_dir())
    run = build_run_config("procedural", "tiny", {}, data.train.max_len)
    return Trainer(run, data, tmp_path_factory.mktemp("procedural"), tensorboard=False, progress=False,
                   log_lines=False).train()


@pytest.fixture(scope="session")
def ar_mdn_ckpt(model_data_dir, tmp_path_factory) -> Path:
    """A finished ``ar_mdn`` model (tiny, 20 iterations) of ``model_data_dir``: directed, drawn step by step."""
    from trajsynth.data.train_data import load_train_data
    from trajsynth.models.registry import run_config
    from trajsynth.training.loop import Trainer

    data = load_train_data(model_data_dir)
    run = run_config("ar_mdn", "tiny", max_seq_len=MODEL_MAX_LEN, ar_iterations=20)
    return Trainer(run, data, tmp_path_factory.mktemp("ar_mdn"), tensorboard=False, progress=False,
                   log_lines=False).train()


@pytest.fixture
def one_thread():
    """One torch thread for the test (tiny networks: faster, and fair on a busy machine), then the count before."""
    from trajsynth.utils.threads import using_threads

    with using_threads(1):
        yield
