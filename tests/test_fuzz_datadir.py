"""Fuzzing data directories: mutated copies of a small valid directory into the validator and the loaders.

Properties:

* ``validate_data_dir`` (and ``trajsynth validate-data``) never raises: the report is valid, or
  invalid with every error naming a file of the directory; a mutation that surely breaks the
  directory (a deleted or emptied required file) makes it invalid.
* ``load_split`` returns consistent arrays or raises a clean error (ValueError or
  FileNotFoundError, one line, naming the file).
* ``load_train_data`` loads a directory the validator accepts, and refuses one it rejects with a
  ValueError listing the validator's errors.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_data_dir
from fuzzing import assert_clean_error, count_case, fewer, raised_in_package
from hypothesis import event, given
from hypothesis import strategies as st

from trajsynth.cli.main import main
from trajsynth.data.directory import SPLITS, load_split
from trajsynth.data.train_data import load_train_data
from trajsynth.data.validate import validate_data_dir

MAX_LEN = 16
ARRAYS = [f"{k}_{s}.npy" for s in SPLITS for k in ("X", "C", "L")]
PATHS = [f"paths_{s}.npz" for s in SPLITS]
REQUIRED = [*ARRAYS, *PATHS, "normalization_params.json", "meta.json"]
FILES = [*REQUIRED, "normalization_params.npy"]


@pytest.fixture(scope="module")
def valid_dir(tmp_path_factory) -> Path:
    out = synthetic_data_dir(tmp_path_factory.mktemp("fuzzdir") / "data", 40, 2, MAX_LEN)
    assert validate_data_dir(out).ok
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """Where the mutated copies live (one folder each, removed after its case)."""
    return tmp_path_factory.mktemp("mutated")


# --------------------------------------------------------------------------- mutations


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr)


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


ODD_ARRAYS = st.sampled_from([
    np.zeros(()), np.zeros((0,)), np.zeros((0, MAX_LEN, 8), np.float32), np.array(["a", "b"]),
    np.array([True, False]), np.zeros((3, 2), np.complex64), np.array([1, 2], np.uint8),
    np.array([np.nan, np.inf, -np.inf]), np.zeros((2, 2, 2, 2)), np.array([-1, 10**9], np.int64),
    np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]), np.array(["x" * 5] * 3, dtype="S5"),
])


@st.composite
def array_edit(draw, arr: np.ndarray) -> np.ndarray:
    """A changed dtype, shape or content of ``arr``."""
    kind = draw(st.sampled_from(["dtype", "slice", "reshape", "value", "odd"]))
    if kind == "dtype" and arr.dtype.names is None and arr.dtype.kind not in "US":
        return arr.astype(draw(st.sampled_from([np.float64, np.float16, np.int32, np.int8, bool, str, np.complex64])))
    if kind == "slice" and arr.ndim:
        return arr[: draw(st.integers(0, max(len(arr) - 1, 0)))] if draw(st.booleans()) else arr[..., :1]
    if kind == "reshape" and arr.size:
        return arr.reshape(-1) if draw(st.booleans()) else arr[None]
    if kind == "value" and arr.size and arr.dtype.kind in "fiu":
        out = arr.copy().reshape(-1)
        values = [np.nan, np.inf, -np.inf, 1e30, -5, 0, 1.5, 2**40] if arr.dtype.kind == "f" else [-1, 0, 10**6]
        for _ in range(draw(st.integers(1, 3))):
            out[draw(st.integers(0, out.size - 1))] = draw(st.sampled_from(values))
        return out.reshape(arr.shape)
    return draw(ODD_ARRAYS)


@st.composite
def json_edit(draw, obj):
    """A changed JSON document: a key removed or retyped, or another document altogether."""
    if isinstance(obj, dict) and obj and draw(st.booleans()):
        obj = dict(obj)
        key = draw(st.sampled_from(sorted(obj)))
        if draw(st.booleans()):
            del obj[key]
        else:
            obj[key] = draw(JSON_VALUES)
        return obj
    return draw(JSON_VALUES)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _users_edit(draw, meta: dict) -> dict:
    meta = json.loads(json.dumps(meta))
    split = draw(st.sampled_from(SPLITS))
    meta["users"][split] = draw(st.one_of(JSON_VALUES, st.just(meta["users"]["train"])))
    return meta


def _edit_content(draw, path: Path, orig: Path) -> None:
    """Write ``path`` as the valid file ``orig`` with a changed array, archive member or JSON value."""
    if path.suffix == ".npy":
        _save_npy(path, draw(array_edit(np.load(orig, allow_pickle=False))))
    elif path.suffix == ".npz":
        arrays = _npz_arrays(orig)
        key = draw(st.sampled_from(sorted(arrays)))
        if draw(st.integers(0, 4)) == 0:
            del arrays[key]
        else:
            arrays[key] = draw(array_edit(arrays[key]))
        np.savez(path, **arrays)
    elif path.name == "meta.json" and draw(st.booleans()):
        path.write_text(json.dumps(_users_edit(draw, json.loads(orig.read_text()))))
    else:
        text = json.dumps(draw(json_edit(json.loads(orig.read_text()))))
        path.write_bytes(text.encode() if draw(st.integers(0, 5)) else b"\xff\xfe" + text.encode())


@st.composite
def mutation(draw, d: Path, src: Path) -> str:
    """Apply one mutation to ``d`` (a copy of ``src``); returns what it did to which file.

    Content edits start from the valid file in ``src``, so every mutation can be drawn on any copy.
    """
    name = draw(st.sampled_from([f for f in FILES if (d / f).exists()]))
    path, orig = d / name, src / name
    current = path.read_bytes()
    path.unlink()  # the copy's files are hard links to the valid ones: write new files, never through them
    kind = draw(st.sampled_from(["delete", "truncate", "bytes", "content", "content"]))
    if kind == "truncate":
        n = draw(st.integers(0, max(len(current) - 1, 0)))
        path.write_bytes(current[:n])
        kind = "truncate" if current[n:].strip() else "trim"  # only whitespace cut: may well stay valid
    elif kind == "bytes":
        data = bytearray(current or orig.read_bytes())
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        path.write_bytes(bytes(data))
    elif kind == "content":
        _edit_content(draw, path, orig)
    return f"{kind} {name}"


@contextmanager
def _mutated(valid_dir: Path, scratch: Path, data) -> Iterator[tuple[Path, list[str]]]:
    """A mutated copy of ``valid_dir`` (below ``scratch``) and what was done to it; removed afterwards."""
    tmp = Path(tempfile.mkdtemp(dir=scratch))
    d = tmp / "d"
    shutil.copytree(valid_dir, d, copy_function=os.link)  # hard links: cheap, and mutations replace files
    try:
        yield d, [data.draw(mutation(d, valid_dir)) for _ in range(data.draw(st.integers(1, 3)))]
    finally:
        shutil.rmtree(tmp)


def _surely_broken(done: list[str]) -> list[str]:
    """Required files whose last mutation deleted or truncated them."""
    last = {m.split()[1]: m.split()[0] for m in done}
    return [f for f, kind in last.items() if f in REQUIRED and kind in ("delete", "truncate")]


# --------------------------------------------------------------------------- properties


@given(data=st.data())
def test_validator_reports_never_raises(valid_dir, scratch, data):
    count_case()
    with _mutated(valid_dir, scratch, data) as (d, done):
        report = validate_data_dir(d)
    known = {*FILES, "X_*.npy", *(f"{k}_{s}.npy" for k in "AD" for s in ("train", "val", "test"))}  # + labels
    for err in report.errors:
        assert err.split(": ", 1)[0] in known, f"error does not name a file: {err!r}"
    broken = _surely_broken(done)
    if broken:
        assert not report.ok, f"{broken} left the directory valid"
    assert report.format().splitlines()[-1] == ("VALID" if report.ok else f"INVALID ({len(report.errors)} problem(s))")


@given(data=st.data())
def test_load_split_is_consistent_or_a_clean_error(valid_dir, scratch, data):
    count_case()
    split, with_paths = data.draw(st.sampled_from(SPLITS)), data.draw(st.booleans())
    try:
        with _mutated(valid_dir, scratch, data) as (d, _):
            s = load_split(d, split, with_paths=with_paths)
    except Exception as e:  # noqa: BLE001 - the property is about which exceptions escape
        msg = assert_clean_error(e, (ValueError, FileNotFoundError))
        assert raised_in_package(e) and split in msg, f"not our error naming the file: {e!r}"
        return
    n = len(s.L)
    assert s.X.ndim == 3 and len(s.X) == n and s.C.shape == (n,) and s.L.shape == (n,)
    assert len(s.offsets) == n + 1 and s.start_px.shape == (n, 2)
    assert all(len(a) == n for a in (s.user, s.session, s.action))


@fewer(2)
@given(data=st.data())
def test_train_data_loads_what_the_validator_accepts(valid_dir, scratch, data):
    count_case()
    with _mutated(valid_dir, scratch, data) as (d, _):
        report = validate_data_dir(d)
        event("valid" if report.ok else "invalid")
        if not report.ok:
            with pytest.raises(ValueError) as info:
                load_train_data(d)
            assert str(info.value).splitlines()[1:] == report.errors
            return
        data_ = load_train_data(d)
    assert len(data_.train) > 0 and data_.train.X.isfinite().all()
    assert data_.train.X.shape[1:] == (MAX_LEN, 8)


@fewer(4)
@given(data=st.data())
def test_validate_data_cli_exit_code(valid_dir, scratch, data, capsys):
    count_case()
    with _mutated(valid_dir, scratch, data) as (d, _):
        code = main(["validate-data", str(d)])
        ok = validate_data_dir(d).ok
    out = capsys.readouterr().out
    assert code == (0 if ok else 1)
    assert out.strip().endswith("VALID" if code == 0 else "problem(s))")
