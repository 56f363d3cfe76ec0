"""Full preprocessing of the real datasets in ../shared/datasets (skipped where absent).

Each dataset is processed once per module (SapiMouse ~10-15 s, Balabit ~15-25 s).
"""

from __future__ import annotations

import numpy as np
import pytest

from trajsynth.cli.main import main
from trajsynth.data.directory import SPLITS, load_meta, load_params, load_split
from trajsynth.data.features import condition_to_distance, features_to_paths
from trajsynth.data.preprocess import preprocess
from trajsynth.data.summary import summarize
from trajsynth.data.validate import validate_data_dir


@pytest.fixture(scope="module")
def sapimouse_dir(tmp_path_factory, sapimouse_raw):
    out = tmp_path_factory.mktemp("sapimouse") / "data"
    meta = preprocess(sapimouse_raw, out, progress=False)
    return out, meta


@pytest.fixture(scope="module")
def balabit_dir(tmp_path_factory, balabit_raw):
    out = tmp_path_factory.mktemp("balabit") / "data"
    meta = preprocess(balabit_raw, out, progress=False)
    return out, meta


def check_splits(meta, n_users):
    users = {s: set(meta["users"][s]) for s in SPLITS}
    assert all(users.values())
    assert not (users["train"] & users["val"] or users["train"] & users["test"] or users["val"] & users["test"])
    assert len(set().union(*users.values())) == n_users


def check_roundtrip(out, split="test"):
    """Stored features + condition reproduce every stored path of the split (px and ms)."""
    s = load_split(out, split)
    back = features_to_paths(s.X, s.C, s.L, load_params(out))
    err = max(np.abs(b - s.path(i)).max() for i, b in enumerate(back))
    assert err < 0.01, f"worst round-trip error {err:.4g} (px or ms)"


# --------------------------------------------------------------------------- SapiMouse


def test_sapimouse_counts_and_splits(sapimouse_dir):
    out, meta = sapimouse_dir
    total = sum(meta["counts"].values())
    assert total >= 20_000, meta["counts"]
    assert len(meta["source_files"]) == 245 and meta["skipped_files"] == [] and meta["skipped_rows"] == {}
    check_splits(meta, 120)
    assert meta["dropped_events"]["duplicate event"] > 0 and meta["dropped_events"]["non-monotonic timestamp"] > 0
    assert meta["candidate_movements"] > total
    assert load_meta(out)["counts"] == meta["counts"]


@pytest.mark.parametrize("dataset", ["sapimouse_dir", "balabit_dir"])
def test_processed_data_validates(dataset, request, capsys):
    out, _ = request.getfixturevalue(dataset)
    assert validate_data_dir(out).ok
    assert main(["validate-data", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith("VALID")


def test_sapimouse_looks_like_the_readme_says(sapimouse_dir):
    """Median ~35 points, median distance a few hundred px, movement time growing with distance."""
    out, _ = sapimouse_dir
    s = load_split(out, "train")
    dist = condition_to_distance(s.C, load_params(out))
    dur = s.points[s.offsets[1:] - 1, 0]
    assert 20 <= np.median(s.L) <= 50
    assert 250 < np.median(dist) < 700
    assert np.median(dur[dist > 800]) > 1.5 * np.median(dur[(dist > 20) & (dist < 50)])


def test_sapimouse_round_trip(sapimouse_dir):
    check_roundtrip(sapimouse_dir[0])


# --------------------------------------------------------------------------- Balabit


def test_balabit_counts_and_splits(balabit_dir):
    out, meta = balabit_dir
    assert sum(meta["counts"].values()) >= 20_000, meta["counts"]
    assert len(meta["source_files"]) == 65 and meta["skipped_files"] == []
    check_splits(meta, 10)
    assert meta["dropped_events"]["artefact coordinate"] > 0  # the 65535 rows


def test_balabit_round_trip_and_summary(balabit_dir):
    out, _ = balabit_dir
    check_roundtrip(out)
    summary = summarize(out)
    assert summary["splits"]["train"]["users"] >= 4
    assert summary["padding"]["length_aware"] < summary["padding"]["random"]
