"""Features, their inverse, the data directory, the validator and preprocessing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from trajsynth.cli.main import main
from trajsynth.data.directory import load_params, load_split, split_users
from trajsynth.data.embedded import embedded_data_dir, load_embedded_segments
from trajsynth.data.features import (
    condition_to_distance,
    distance_to_condition,
    features_to_paths,
    fit_params,
    pad_paths,
    paths_to_features,
    raw_kinematics,
)
from trajsynth.data.preprocess import PreprocessConfig, preprocess
from trajsynth.data.synthetic import synthetic_segments
from trajsynth.data.validate import validate_data_dir

TOL_PX, TOL_MS = 0.01, 0.01


def roundtrip_error(paths, max_len=100):
    P, L = pad_paths(paths, max_len)
    params = fit_params(raw_kinematics(P, L), 10.0, 3000.0)
    X, C, L = paths_to_features(paths, max_len, params)
    back = features_to_paths(X, C, L, params)
    rel = [p - p[:1] for p in paths]
    err_xy = max(np.abs(b[:, 1:] - r[:, 1:]).max() for b, r in zip(back, rel, strict=True))
    err_t = max(np.abs(b[:, 0] - r[:, 0]).max() for b, r in zip(back, rel, strict=True))
    return X, L, err_xy, err_t


def test_features_in_range_zero_padded_and_invertible():
    paths = [s.points for s in synthetic_segments(200, seed=0)]
    X, L, err_xy, err_t = roundtrip_error(paths)
    assert X.dtype == np.float32 and np.abs(X).max() <= 1
    assert np.all(X[np.arange(X.shape[1])[None, :] >= L[:, None]] == 0)
    assert err_xy < TOL_PX and err_t < TOL_MS


def test_roundtrip_on_real_embedded_movements():
    paths = [s.points for s in load_embedded_segments()[:1500]]
    _, _, err_xy, err_t = roundtrip_error(paths)
    assert err_xy < TOL_PX and err_t < TOL_MS


def test_condition_distance_inverse():
    params = fit_params(raw_kinematics(*pad_paths([s.points for s in synthetic_segments(20)], 100)), 10, 3000)
    d = np.array([10.0, 55.5, 800.0, 3000.0])
    c = distance_to_condition(d, params)
    assert c[0] == -1 and c[-1] == 1
    assert np.allclose(condition_to_distance(c, params), d)


def test_user_split_is_disjoint_and_seeded():
    users = [f"u{i}" for i in range(20)]
    a, b, c = split_users(users, 0.15, 0.15, 1), split_users(users, 0.15, 0.15, 1), split_users(users, 0.15, 0.15, 2)
    assert a == b and a != c
    assert set(a["train"]) | set(a["val"]) | set(a["test"]) == set(users)
    assert not set(a["train"]) & set(a["test"]) and not set(a["val"]) & set(a["test"])


def test_preprocess_synthetic_logs(raw_dir, tmp_path):
    out = tmp_path / "out"
    meta = preprocess(raw_dir, out, PreprocessConfig(seed=4), workers=1, progress=False)
    assert sum(meta["counts"].values()) == 120
    assert validate_data_dir(out).ok
    again = preprocess(raw_dir, tmp_path / "again", PreprocessConfig(seed=4), workers=2, progress=False)
    assert again["users"] == meta["users"]
    assert np.array_equal(np.load(out / "X_train.npy"), np.load(tmp_path / "again" / "X_train.npy"))
    with pytest.raises(FileExistsError, match="--overwrite"):
        preprocess(raw_dir, out, progress=False)
    preprocess(raw_dir, out, PreprocessConfig(seed=5), overwrite=True, progress=False)
    assert json.loads((out / "meta.json").read_text())["config"]["seed"] == 5


def test_bad_file_is_skipped_rest_processed(raw_dir, tmp_path):
    (raw_dir / "user0" / "broken.csv").write_text("what,is,this\n1,2,3\n")
    (raw_dir / "user1" / "empty.csv").write_text("")
    meta = preprocess(raw_dir, tmp_path / "o", workers=1, progress=False)
    assert sum(meta["counts"].values()) == 120
    assert len(meta["skipped_files"]) == 2
    assert any("broken.csv" in m for m in meta["skipped_files"])


def test_nothing_usable_is_an_error(tmp_path):
    (tmp_path / "raw" / "u1").mkdir(parents=True)
    (tmp_path / "raw" / "u1" / "x.csv").write_text("foo\n")
    with pytest.raises(ValueError, match="no usable movements"):
        preprocess(tmp_path / "raw", tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists(), "nothing half-written"


def broken_copy(src, dst, edit):
    shutil.copytree(src, dst)
    edit(dst)
    return dst


def _nan(d):
    X = np.load(d / "X_val.npy")
    X[2, 0, 3] = np.nan
    np.save(d / "X_val.npy", X)


def _shape(d):
    np.save(d / "X_test.npy", np.load(d / "X_test.npy")[..., :7])


def _padding(d):
    X, L = np.load(d / "X_train.npy"), np.load(d / "L_train.npy")
    X[0, L[0]:, 0] = 0.5
    np.save(d / "X_train.npy", X)


def _lengths(d):
    L = np.load(d / "L_train.npy")
    L[1] = 0
    np.save(d / "L_train.npy", L)


def _users(d):
    meta = json.loads((d / "meta.json").read_text())
    meta["users"]["test"].append(meta["users"]["train"][0])
    (d / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("edit, file", [
    (_nan, "X_val.npy"), (_shape, "X_test.npy"), (lambda d: (d / "C_val.npy").unlink(), "C_val.npy"),
    (_padding, "X_train.npy"), (_lengths, "L_train.npy"), (_users, "meta.json"),
])
def test_validator_names_the_broken_file(small_data_dir, tmp_path, capsys, edit, file):
    assert validate_data_dir(small_data_dir).ok
    bad = broken_copy(small_data_dir, tmp_path / "bad", edit)
    report = validate_data_dir(bad)
    assert not report.ok and any(e.startswith(file) for e in report.errors), report.errors
    assert main(["validate-data", str(bad)]) == 1
    assert file in capsys.readouterr().out


def test_embedded_data_validates_and_loads():
    d = embedded_data_dir()
    assert validate_data_dir(d).ok
    s = load_split(d, "train")
    assert len(s) > 2000 and s.path(0).shape == (s.L[0], 3)
    assert load_params(d).d_min == 10.0
    assert embedded_data_dir() == d  # cached
