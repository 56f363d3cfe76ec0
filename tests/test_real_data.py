"""The real datasets in ../shared (skipped where absent): counts, splits, validity, round trip."""

from __future__ import annotations

import numpy as np
import pytest

from trajsynth.cli.main import main
from trajsynth.data.directory import load_meta, load_params, load_split
from trajsynth.data.features import features_to_paths


@pytest.fixture(scope="module")
def sapimouse_dir(tmp_path_factory, sapimouse_raw):
    raw = sapimouse_raw
    out = tmp_path_factory.mktemp("sapi") / "data"
    assert main(["preprocess", str(raw), str(out), "--quiet"]) == 0
    return out


def test_sapimouse_counts_splits_and_validity(sapimouse_dir, capsys):
    meta = load_meta(sapimouse_dir)
    assert sum(meta["counts"].values()) >= 20_000
    assert len(meta["source_files"]) == 245
    users = {k: set(v) for k, v in meta["users"].items()}
    assert not (users["train"] & users["val"] or users["train"] & users["test"] or users["val"] & users["test"])
    assert main(["validate-data", str(sapimouse_dir)]) == 0
    assert "VALID" in capsys.readouterr().out


def test_sapimouse_inverse_reproduces_raw_paths(sapimouse_dir):
    s = load_split(sapimouse_dir, "test")
    back = features_to_paths(s.X, s.C, s.L, load_params(sapimouse_dir))
    err_xy = max(np.abs(b[:, 1:] - s.path(i)[:, 1:]).max() for i, b in enumerate(back))
    err_t = max(np.abs(b[:, 0] - s.path(i)[:, 0]).max() for i, b in enumerate(back))
    assert err_xy < 0.01 and err_t < 0.01


def test_balabit(tmp_path, balabit_raw):
    raw = balabit_raw
    out = tmp_path / "balabit"
    assert main(["preprocess", str(raw), str(out), "--quiet"]) == 0
    meta = load_meta(out)
    assert sum(meta["counts"].values()) >= 20_000
    assert meta["dropped_events"]["artefact coordinate"] > 0  # the 65535 rows
    assert main(["validate-data", str(out)]) == 0
