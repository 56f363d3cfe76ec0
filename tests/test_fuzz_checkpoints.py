"""Fuzzing checkpoints: mutated, truncated and restructured checkpoint files into every loader.

Real tiny checkpoints of both families (procedural ``tiny``, latent_wgan ``tiny``, and latent_wgan's
``stage1_final.pt``) are changed two ways: as bytes (truncated, overwritten, junk appended) and as
content (a key deleted or given another value, a weight reshaped, retyped or filled with NaN), then
loaded with ``load_checkpoint``, ``build_model``, ``trajsynth.load``, ``load_continuable`` and
``Trainer.from_checkpoint``.

Property: a loaded object, or an error of ours (ValueError or a subclass such as CheckpointError and
ConfigError, FileNotFoundError) with a one-line message; never another exception. Loading writes
nothing: the checkpoint's folder is unchanged, and a resume that fails leaves its run folder empty.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic_data_dir
from fuzzing import assert_clean_error, count_case, fewer
from hypothesis import given
from hypothesis import strategies as st

import trajsynth
from trajsynth.data.train_data import load_train_data
from trajsynth.models.checkpoint import build_model, load_checkpoint
from trajsynth.training.loop import Trainer
from trajsynth.training.setup import build_run_config, load_continuable

# torch notes odd pickle protocols in damaged files before refusing them: expected here
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")

MAX_LEN = 16
# Errors a loader may raise: ours, with a one-line message. load_checkpoint and serving/sampler.py are being
# reworked elsewhere: for an error raised in them (their frame the innermost of the package's), a TypeError is
# accepted too and only the first line is checked (torch's unpickling errors bring several lines along). The
# sampler's lookups in a damaged checkpoint still raise KeyError / AttributeError: accepted there, but each
# shows as a KnownIssue warning in the test report until that rework lands.
OURS = (ValueError, FileNotFoundError)
RELAXED = (ValueError, FileNotFoundError, TypeError)
REWORKED = {("checkpoint.py", "load_checkpoint"), ("sampler.py", "*")}


class KnownIssue(UserWarning):
    """An error type the property does not allow, raised where another change is due to fix it."""

@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    out = synthetic_data_dir(tmp_path_factory.mktemp("ckfuzz") / "data", 60, 1, MAX_LEN)
    return load_train_data(out)


class Quiet(dict):
    """A dict that prints as its keys: Hypothesis shows fixture values in its failure reports."""

    def __repr__(self) -> str:
        return f"<{', '.join(self)}>"


@pytest.fixture(scope="module")
def checkpoints(train_data, tmp_path_factory) -> dict[str, bytes]:
    """The bytes of real tiny checkpoints: finished procedural and latent_wgan models, a stage-1 one."""
    out = Quiet()
    for fam in ("procedural", "latent_wgan"):
        run_dir = tmp_path_factory.mktemp(fam)
        run = build_run_config(fam, "tiny", {}, MAX_LEN)
        final = Trainer(run, train_data, run_dir, tensorboard=False, progress=False, log_lines=False).train()
        out[fam] = final.read_bytes()
        if fam == "latent_wgan":
            out["latent_wgan_stage1"] = (run_dir / "stage1_final.pt").read_bytes()
    return out


@pytest.fixture(scope="module")
def payloads(checkpoints) -> dict[str, dict]:
    return Quiet({k: torch.load(io.BytesIO(v), weights_only=True) for k, v in checkpoints.items()})


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mutated_ckpts")


# --------------------------------------------------------------------------- byte mutations


@st.composite
def mutated_bytes(draw, raw: bytes) -> bytes:
    kind = draw(st.sampled_from(["truncate", "overwrite", "pickle", "append", "other"]))
    if kind == "truncate":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if kind == "append":
        return raw + draw(st.binary(min_size=1, max_size=64))
    if kind == "other":
        return draw(st.sampled_from([b"", b"not a checkpoint\n", b"PK\x03\x04", b"\x80\x02}q\x00.", b"\x00" * 100]))
    start = raw.find(b"\x80\x02", raw.find(b"data.pkl")) if kind == "pickle" else 0  # the pickled structure
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(start, min(len(raw) - 1, start + 4000) if kind == "pickle" else len(raw) - 1))
        data[i] = draw(st.integers(0, 255))
    return bytes(data)


# --------------------------------------------------------------------------- content mutations

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


@st.composite
def tensor_edit(draw, t):
    if not isinstance(t, torch.Tensor):
        return draw(VALUES)
    kind = draw(st.sampled_from(["shape", "dtype", "nan", "value", "empty"]))
    if kind == "shape":
        return t.reshape(-1)[: max(t.numel() - 1, 0)] if draw(st.booleans()) else t.unsqueeze(0)
    if kind == "dtype":
        return t.to(draw(st.sampled_from([torch.float64, torch.int64, torch.bool, torch.uint8, torch.float16])))
    if kind == "nan" and t.is_floating_point():
        return torch.full_like(t, float(draw(st.sampled_from(["nan", "inf", "1e30"]))))
    if kind == "empty":
        return torch.zeros(0)
    return draw(VALUES)


def _get_at(d, path):
    for k in path:
        d = d[k]
    return d


def _paths(d, prefix=(), depth=3):
    """Key paths into nested dicts (and lists), to pick a place to mutate."""
    out = [prefix] if prefix else []
    if depth and isinstance(d, dict):
        for k, v in d.items():
            out += _paths(v, (*prefix, k), depth - 1)
    elif depth and isinstance(d, list) and d:
        out += _paths(d[0], (*prefix, 0), depth - 1)
    return out


def _copy(d):
    if isinstance(d, dict):
        return {k: _copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_copy(v) for v in d]
    return d


@st.composite
def mutated_payload(draw, payload: dict) -> dict:
    """The checkpoint dict with 1-3 values deleted, replaced or (tensors) reshaped, retyped or NaN."""
    out = _copy(payload)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(out)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get_at(out, path[:-1]), path[-1]
        if isinstance(parent, dict) and draw(st.integers(0, 3)) == 0:
            del parent[key]
        else:
            parent[key] = draw(tensor_edit(parent[key]))
    return out


def _save(payload: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


@st.composite
def checkpoint_file(draw, checkpoints, payloads) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(checkpoints)))
    if draw(st.booleans()):
        return name, draw(mutated_bytes(checkpoints[name]))
    return name, _save(draw(mutated_payload(payloads[name])))


# --------------------------------------------------------------------------- checks


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


@contextmanager
def _written(scratch: Path, data: bytes):
    """``data`` as ``ckpt.pt`` in a fresh folder; afterwards the folder must hold exactly that file, unchanged."""
    folder = Path(tempfile.mkdtemp(dir=scratch))
    path = folder / "ckpt.pt"
    path.write_bytes(data)
    before = _listing(folder)
    try:
        yield path
        assert _listing(folder) == before, "loading changed the checkpoint's folder"
        assert path.read_bytes() == data
    finally:
        shutil.rmtree(folder)


def _raised_in(err: BaseException) -> tuple[str, str]:
    """(file name, function) of the innermost frame of the package's own code that ``err`` passed through."""
    where, tb = ("", ""), err.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if f"{os.sep}trajsynth{os.sep}" in code.co_filename:
            where = (os.path.basename(code.co_filename), code.co_name)
        tb = tb.tb_next
    return where


def _expect(call):
    """``call()``'s result, or None after checking that the error it raised is one of ours."""
    try:
        return call()
    except Exception as e:  # noqa: BLE001 - the property is about which exceptions escape
        file, function = _raised_in(e)
        reworked = (file, function) in REWORKED or (file, "*") in REWORKED
        if reworked and file == "sampler.py" and isinstance(e, (KeyError, AttributeError)):
            warnings.warn(KnownIssue(f"{file}:{function} raised {type(e).__name__}: {e}"), stacklevel=1)
            return None
        assert_clean_error(e, RELAXED if reworked else OURS, first_line=reworked)
        return None


# --------------------------------------------------------------------------- properties


@given(data=st.data())
def test_load_checkpoint_and_build_model(checkpoints, payloads, scratch, data):
    count_case()
    name, raw = data.draw(checkpoint_file(checkpoints, payloads))
    with _written(scratch, raw) as path:
        ckpt = _expect(lambda: load_checkpoint(path))
        if ckpt is None:
            return
        assert isinstance(ckpt, dict)
        model = _expect(lambda: build_model(ckpt, path))
    if model is not None:
        assert isinstance(model, torch.nn.Module) and not model.training


@given(data=st.data())
def test_trajsynth_load(checkpoints, payloads, scratch, data):
    count_case()
    name, raw = data.draw(checkpoint_file(checkpoints, payloads))
    with _written(scratch, raw) as path:
        sampler = _expect(lambda: trajsynth.load(path))
    if sampler is not None:
        assert sampler.family in ("procedural", "latent_wgan")
        lo, hi = sampler.distance_range
        assert np.isfinite([lo, hi]).all()


@given(data=st.data())
def test_load_continuable(checkpoints, payloads, scratch, data):
    count_case()
    name, raw = data.draw(checkpoint_file(checkpoints, payloads))
    family = data.draw(st.sampled_from([None, "procedural", "latent_wgan", "diffusion"]))
    with _written(scratch, raw) as path:
        ckpt = _expect(lambda: load_continuable(path, family))
    if ckpt is not None:
        assert ckpt["trainer_state"]["done"]


@fewer(2)
@given(data=st.data())
def test_trainer_from_checkpoint(checkpoints, payloads, scratch, train_data, data):
    count_case()
    name, raw = data.draw(checkpoint_file(checkpoints, payloads))
    run_dir = Path(tempfile.mkdtemp(dir=scratch))
    kw = dict(tensorboard=False, progress=False, log_lines=False)
    try:
        with _written(scratch, raw) as path:
            trainer = _expect(lambda: Trainer.from_checkpoint(path, train_data, run_dir, **kw))
        written = sorted(os.listdir(run_dir))
        if trainer is None:
            assert written == [], f"a failed resume left {written} in its run folder"
        else:
            assert written == ["config.yaml", "metrics.jsonl"]
            assert 0 <= trainer.state["phase"] <= len(trainer.phases)
    finally:
        shutil.rmtree(run_dir)

