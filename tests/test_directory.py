"""The processed data directory: the user split, writing and reading splits, params and meta."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trajsynth.data.directory import (
    SPLITS,
    SplitArrays,
    load_meta,
    load_params,
    load_split,
    split_users,
    write_data_dir,
)
from trajsynth.data.embedded import embedded_data_dir
from trajsynth.data.features import NormalizationParams

PARAMS = NormalizationParams(d_min=10.0, d_max=3000.0, speed_scale=0.5, speed_max=20.0, accel_scale=0.01,
                             accel_max=1.0, ang_vel_scale=0.1, ang_vel_max=3.0, dt_scale=10.0, dt_max=200.0)


def make_split(lengths, T=6, seed=0, user="u") -> SplitArrays:
    """A small split with distinct numbers everywhere, zero past each length."""
    rng = np.random.default_rng(seed)
    L = np.asarray(lengths, np.int64)
    n = len(L)
    X = rng.uniform(-1, 1, (n, T, 8)).astype(np.float32)
    X[np.arange(T)[None, :] >= L[:, None]] = 0
    offsets = np.concatenate([[0], np.cumsum(L)]).astype(np.int64)
    return SplitArrays(
        X=X, C=rng.uniform(-1, 1, n).astype(np.float32), L=L,
        points=rng.normal(size=(int(L.sum()), 3)).astype(np.float32), offsets=offsets,
        start_px=rng.uniform(0, 1900, (n, 2)).astype(np.float32),
        user=np.array([f"{user}{i % 2}" for i in range(n)]), session=np.array([f"s{i}" for i in range(n)]),
        action=np.array(["Left_click"] * n),
    )


@pytest.fixture
def written(tmp_path):
    splits = {"train": make_split([3, 6, 4], seed=1, user="a"), "val": make_split([5], seed=2, user="b"),
              "test": make_split([2, 6], seed=3, user="c")}
    meta = {"users": {"train": ["a0", "a1"], "val": ["b0"], "test": ["c0", "c1"]}, "max_seq_len": 6}
    out = write_data_dir(tmp_path / "d", splits, PARAMS, meta)
    return out, splits, meta


# --------------------------------------------------------------------------- the user split


def test_split_users_is_a_seeded_partition():
    users = [f"u{i}" for i in range(20)] * 3  # repeats do not matter
    s = split_users(users, 0.15, 0.15, 1)
    assert s == split_users(users, 0.15, 0.15, 1)  # same seed, same split
    assert s == split_users(list(reversed(users)), 0.15, 0.15, 1)  # input order does not matter
    assert s != split_users(users, 0.15, 0.15, 2)  # another seed, another split
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (14, 3, 3)
    assert sorted(s["train"] + s["val"] + s["test"]) == sorted(set(users))  # each user exactly once
    assert all(v == sorted(v) for v in s.values())


def test_split_users_small_and_zero_fractions():
    s = split_users(["a", "b", "c"], 0.15, 0.15, 0)  # a tiny fraction still gives val and test one user
    assert [len(s[k]) for k in SPLITS] == [1, 1, 1]
    s = split_users([f"u{i}" for i in range(10)], 0.0, 0.2, 0)
    assert s["val"] == [] and len(s["test"]) == 2 and len(s["train"]) == 8


@pytest.mark.parametrize("users, val, test, match", [
    (["a", "b", "a"], 0.15, 0.15, "at least 3 users"),
    ([f"u{i}" for i in range(10)], 0.6, 0.5, "sum to less than 1"),
    ([f"u{i}" for i in range(10)], -0.1, 0.2, "val_frac"),
    ([f"u{i}" for i in range(10)], 0.1, 1.0, "test_frac"),
])
def test_split_users_rejects(users, val, test, match):
    with pytest.raises(ValueError, match=match):
        split_users(users, val, test, 0)


# --------------------------------------------------------------------------- write and read


def test_written_splits_read_back_exactly(written):
    out, splits, _ = written
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{k}_{s}.npy" for k in "XCL" for s in SPLITS] + [f"paths_{s}.npz" for s in SPLITS]
        + ["meta.json", "normalization_params.json", "normalization_params.npy"])
    for name, orig in splits.items():
        s = load_split(out, name)
        assert len(s) == len(orig.L)
        assert s.X.dtype == np.float32 and s.C.dtype == np.float32 and s.L.dtype == np.int64
        for field in ("X", "C", "L", "points", "offsets", "start_px", "user", "session", "action"):
            assert np.array_equal(getattr(s, field), getattr(orig, field)), (name, field)


def test_path_slices_each_movement(written):
    out, splits, _ = written
    s = load_split(out, "train")
    assert [len(s.path(i)) for i in range(len(s))] == [3, 6, 4]
    assert np.array_equal(s.path(1), splits["train"].points[3:9])
    assert np.array_equal(np.concatenate([s.path(i) for i in range(len(s))]), s.points)


def test_without_paths_the_path_fields_are_empty(written):
    out, splits, _ = written
    s = load_split(out, "test", with_paths=False)
    assert np.array_equal(s.X, splits["test"].X) and np.array_equal(s.L, splits["test"].L)
    assert s.points.shape == (0, 3) and s.offsets.tolist() == [0, 0, 0] and s.start_px.shape == (2, 2)
    assert s.user.tolist() == ["", ""] and len(s.path(0)) == 0
    (out / "paths_val.npz").unlink()  # a missing paths file reads the same way
    v = load_split(out, "val")
    assert len(v) == 1 and v.user.tolist() == [""] and np.array_equal(v.X, splits["val"].X)


def test_load_split_rejects_an_unknown_split(written):
    with pytest.raises(ValueError, match="split must be one of"):
        load_split(written[0], "training")


def test_refuses_to_overwrite_unless_asked(written):
    out, splits, meta = written
    with pytest.raises(FileExistsError):
        write_data_dir(out, splits, PARAMS, {**meta, "max_seq_len": 7})
    assert load_meta(out) == meta  # untouched
    write_data_dir(out, splits, PARAMS, {**meta, "max_seq_len": 7}, overwrite=True)
    assert load_meta(out)["max_seq_len"] == 7


# --------------------------------------------------------------------------- params and meta


def test_params_and_meta_read_back(written):
    out, _, meta = written
    assert load_params(out) == PARAMS and load_meta(out) == meta
    structured = np.load(out / "normalization_params.npy")
    assert {k: float(structured[k][0]) for k in structured.dtype.names} == PARAMS.to_dict()


def test_missing_or_broken_params_and_meta_name_the_file(written):
    out, _, _ = written
    d = PARAMS.to_dict()
    del d["accel_max"]
    (out / "normalization_params.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"normalization_params\.json: .*accel_max"):
        load_params(out)
    (out / "normalization_params.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"normalization_params\.json is missing"):
        load_params(out)
    (out / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"meta\.json: not valid JSON"):
        load_meta(out)
    (out / "meta.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"meta\.json is missing"):
        load_meta(out)


@pytest.mark.parametrize("name, damage, error, words", [
    ("X_train.npy", lambda p: p.unlink(), FileNotFoundError, "X_train.npy is missing"),
    ("X_train.npy", lambda p: p.write_bytes(p.read_bytes()[:100]), ValueError, "X_train.npy: cannot be read"),
    ("L_train.npy", lambda p: p.write_bytes(b""), ValueError, "L_train.npy: cannot be read"),
    ("C_train.npy", lambda p: np.save(p, np.zeros(2, np.float32)), ValueError, r"C_train.npy: shape \(2,\), expected"),
    ("X_train.npy", lambda p: np.save(p, np.zeros((3, 6), np.float32)), ValueError, r"X_train.npy: shape \(3, 6\)"),
    ("L_train.npy", lambda p: np.save(p, np.array(["a", "b", "c"])), ValueError, "non-numeric"),
    ("paths_train.npz", lambda p: p.write_bytes(p.read_bytes()[:-30]), ValueError, "paths_train.npz: cannot be read"),
    ("paths_train.npz", lambda p: np.savez(p, points=np.zeros((3, 3)), offsets=np.zeros(2, np.int64),
                                           start_px=np.zeros((3, 2)), user=np.array(["a"] * 3),
                                           session=np.array(["s"] * 3), action=np.array(["x"] * 3)),
     ValueError, "do not describe 3 movements"),
], ids=["missing", "truncated", "empty", "C-shape", "X-shape", "L-text", "npz-truncated", "npz-offsets"])
def test_load_split_names_the_damaged_file(written, name, damage, error, words):
    """Found by tests/test_fuzz_datadir.py: numpy's own errors (or none at all) came out of load_split."""
    out, _, _ = written
    damage(out / name)
    with pytest.raises(error, match=words) as info:
        load_split(out, "train")
    assert "\n" not in str(info.value)


def test_params_that_are_not_numbers_are_refused():
    d = PARAMS.to_dict()
    for bad in ({**d, "dt_max": "fast"}, {**d, "format_version": float("inf")}, [1, 2], None):
        with pytest.raises(ValueError, match="normalization params"):
            NormalizationParams.from_dict(bad)


# --------------------------------------------------------------------------- the embedded directory


def test_embedded_directory_loads():
    d = embedded_data_dir()
    s = load_split(d, "train")
    assert len(s) > 2000 and s.path(0).shape == (s.L[0], 3)
    assert np.array_equal(s.path(0)[0], [0, 0, 0])  # paths are stored relative to their start
    assert load_params(d).d_min == 10.0
    assert set(s.user.tolist()) == set(load_meta(d)["users"]["train"])
