"""The data-directory validator: a valid dir passes, every kind of damage is caught and named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from trajsynth.cli.main import main
from trajsynth.data.preprocess import PreprocessConfig, preprocess
from trajsynth.data.validate import validate_data_dir


def test_valid_directory_is_ok(small_data_dir):
    report = validate_data_dir(small_data_dir)
    assert report.ok and report.errors == []
    assert "splits are user-disjoint" in report.notes
    assert any(n.startswith("train: ") and "max_seq_len 100" in n for n in report.notes)
    assert report.format().splitlines()[-1] == "VALID"


def test_cli_valid_directory_exits_0(small_data_dir, capsys):
    assert main(["validate-data", str(small_data_dir)]) == 0
    out = capsys.readouterr().out
    assert str(small_data_dir) in out and out.strip().endswith("VALID")


# --------------------------------------------------------------------------- damaged copies


def _save(d: Path, name: str, arr: np.ndarray) -> None:
    with open(d / name, "wb") as f:  # np.save(path) would append .npy to odd names
        np.save(f, arr)


def nan_in_x(d):
    X = np.load(d / "X_val.npy")
    X[2, 0, 3] = np.nan
    _save(d, "X_val.npy", X)


def inf_in_x(d):
    X = np.load(d / "X_train.npy")
    X[5, 1, 2] = np.inf
    _save(d, "X_train.npy", X)


def seven_features(d):
    _save(d, "X_test.npy", np.load(d / "X_test.npy")[..., :7])


def two_dim_x(d):
    X = np.load(d / "X_test.npy")
    _save(d, "X_test.npy", X.reshape(len(X), -1))


def float64_x(d):
    _save(d, "X_train.npy", np.load(d / "X_train.npy").astype(np.float64))


def out_of_range_x(d):
    X, L = np.load(d / "X_val.npy"), np.load(d / "L_val.npy")
    X[0, L[0] - 1, 0] = 1.5
    _save(d, "X_val.npy", X)


def missing(name):
    def edit(d):
        (d / name).unlink()
    edit.__name__ = f"missing_{name}"
    return edit


def nonzero_padding(d):
    X, L = np.load(d / "X_train.npy"), np.load(d / "L_train.npy")
    i = int(np.argmin(L))
    X[i, L[i]:, 0] = 0.5
    _save(d, "X_train.npy", X)


def length_zero(d):
    L = np.load(d / "L_train.npy")
    L[1] = 0
    _save(d, "L_train.npy", L)


def length_too_long(d):
    L = np.load(d / "L_test.npy")
    L[0] = np.load(d / "X_test.npy").shape[1] + 1
    _save(d, "L_test.npy", L)


def float_lengths(d):
    _save(d, "L_val.npy", np.load(d / "L_val.npy").astype(np.float32))


def lengths_count(d):
    _save(d, "L_val.npy", np.load(d / "L_val.npy")[:-1])


def user_in_two_splits(d):
    meta = json.loads((d / "meta.json").read_text())
    meta["users"]["test"].append(meta["users"]["train"][0])
    (d / "meta.json").write_text(json.dumps(meta))


def undeclared_user(d):
    meta = json.loads((d / "meta.json").read_text())
    meta["users"]["val"] = []
    (d / "meta.json").write_text(json.dumps(meta))


def meta_not_json(d):
    (d / "meta.json").write_text("{not json")


def condition_nan(d):
    C = np.load(d / "C_train.npy")
    C[0] = np.nan
    _save(d, "C_train.npy", C)


def condition_out_of_range(d):
    C = np.load(d / "C_test.npy")
    C[0] = -3.0
    _save(d, "C_test.npy", C)


def condition_count(d):
    _save(d, "C_val.npy", np.load(d / "C_val.npy")[1:])


def offsets_mismatch(d):
    with np.load(d / "paths_train.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["offsets"] = arrays["offsets"].copy()
    arrays["offsets"][1] += 1
    np.savez_compressed(d / "paths_train.npz", **arrays)


def negative_scale(d):
    params = json.loads((d / "normalization_params.json").read_text())
    params["dt_scale"] = -1.0
    (d / "normalization_params.json").write_text(json.dumps(params))


def params_key_missing(d):
    params = json.loads((d / "normalization_params.json").read_text())
    del params["speed_max"]
    (d / "normalization_params.json").write_text(json.dumps(params))


def not_npy(d):
    (d / "X_val.npy").write_text("this is not an array")


def damaged_npy_header(d):
    data = bytearray((d / "L_test.npy").read_bytes())
    data[data.index(b"(")] = ord("]")  # numpy parses the header as a Python literal: a TokenError inside
    (d / "L_test.npy").write_bytes(bytes(data))


def damaged_npz(d):
    data = (d / "paths_val.npz").read_bytes()
    (d / "paths_val.npz").write_bytes(data[: len(data) // 2])  # no central directory: a BadZipFile inside


def npz_flag_bits(d):
    data = bytearray((d / "paths_test.npz").read_bytes())
    data[data.index(b"PK\x01\x02") + 8] |= 0x20  # "compressed patched data": zipfile raises NotImplementedError
    (d / "paths_test.npz").write_bytes(bytes(data))


def text_x(d):
    _save(d, "X_train.npy", np.load(d / "X_train.npy").astype(str))


def text_c(d):
    _save(d, "C_val.npy", np.load(d / "C_val.npy").astype(str))


def meta_not_utf8(d):
    (d / "meta.json").write_bytes(b"\xff\xfe" + (d / "meta.json").read_bytes())


def params_not_numbers(d):
    params = json.loads((d / "normalization_params.json").read_text())
    params.update(dt_max=[1, 2], format_version=float("inf"))  # json writes Infinity
    (d / "normalization_params.json").write_text(json.dumps(params))


def different_max_len(d):
    X = np.load(d / "X_val.npy")
    _save(d, "X_val.npy", np.concatenate([X, np.zeros((len(X), 5, X.shape[2]), X.dtype)], axis=1))


CASES = [
    # (damage, file the error must name, words the message must hold)
    (nan_in_x, "X_val.npy", "NaN"),
    (inf_in_x, "X_train.npy", "Inf"),
    (seven_features, "X_test.npy", "shape"),
    (two_dim_x, "X_test.npy", "shape"),
    (float64_x, "X_train.npy", "float32"),
    (out_of_range_x, "X_val.npy", "outside [-1, 1]"),
    (missing("X_train.npy"), "X_train.npy", "missing"),
    (missing("C_val.npy"), "C_val.npy", "missing"),
    (missing("L_test.npy"), "L_test.npy", "missing"),
    (missing("paths_val.npz"), "paths_val.npz", "missing"),
    (missing("meta.json"), "meta.json", "missing"),
    (missing("normalization_params.json"), "normalization_params.json", "missing"),
    (nonzero_padding, "X_train.npy", "not zero past their length"),
    (length_zero, "L_train.npy", "lengths must lie in [1, 100]"),
    (length_too_long, "L_test.npy", "lengths must lie in [1, 100]"),
    (float_lengths, "L_val.npy", "integer"),
    (lengths_count, "L_val.npy", "entries"),
    (user_in_two_splits, "meta.json", "appear in both train and test"),
    (undeclared_user, "paths_val.npz", "not listed for val"),
    (meta_not_json, "meta.json", "users"),
    (condition_nan, "C_train.npy", "NaN"),
    (condition_out_of_range, "C_test.npy", "outside [-1, 1]"),
    (condition_count, "C_val.npy", "shape"),
    (offsets_mismatch, "paths_train.npz", "offsets"),
    (negative_scale, "normalization_params.json", "positive"),
    (params_key_missing, "normalization_params.json", "speed_max"),
    (not_npy, "X_val.npy", "cannot be read"),
    (different_max_len, "X_*.npy", "disagree on max_seq_len"),
    # found by tests/test_fuzz_datadir.py: each of these raised out of the validator
    (damaged_npy_header, "L_test.npy", "cannot be read as a .npy array (TokenError"),
    (damaged_npz, "paths_val.npz", "BadZipFile"),
    (npz_flag_bits, "paths_test.npz", "NotImplementedError"),
    (text_x, "X_train.npy", "dtype <U"),
    (text_c, "C_val.npy", "dtype <U"),
    (meta_not_utf8, "meta.json", "utf-8"),
    (params_not_numbers, "normalization_params.json", "['dt_max'] are not numbers"),
]


@pytest.mark.parametrize("damage, file, words", CASES, ids=[c[0].__name__ for c in CASES])
def test_damage_is_found_and_the_file_named(small_data_dir, tmp_path, damage, file, words):
    bad = tmp_path / "bad"
    shutil.copytree(small_data_dir, bad)
    damage(bad)
    report = validate_data_dir(bad)  # never raises on bad content
    assert not report.ok
    hits = [e for e in report.errors if e.startswith(f"{file}: ")]
    assert hits, report.errors
    assert any(words in e for e in hits), hits
    assert report.format().splitlines()[-1].startswith("INVALID")


@pytest.mark.parametrize("damage, file", [
    (nan_in_x, "X_val.npy"),
    (seven_features, "X_test.npy"),
    (missing("C_val.npy"), "C_val.npy"),
    (nonzero_padding, "X_train.npy"),
    (length_zero, "L_train.npy"),
    (user_in_two_splits, "meta.json"),
], ids=["nan", "shape", "missing", "padding", "lengths", "users"])
def test_cli_exits_1_and_prints_the_file(small_data_dir, tmp_path, capsys, damage, file):
    bad = tmp_path / "bad"
    shutil.copytree(small_data_dir, bad)
    damage(bad)
    assert main(["validate-data", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"ERROR {file}: " in out and "INVALID" in out


def test_the_original_is_untouched_by_the_damage_tests(small_data_dir):
    assert validate_data_dir(small_data_dir).ok


def test_not_a_directory(tmp_path, capsys):
    report = validate_data_dir(tmp_path / "nope")
    assert not report.ok and report.errors == [f"{tmp_path / 'nope'}: not a directory"]
    assert main(["validate-data", str(tmp_path / "nope")]) == 1
    assert "not a directory" in capsys.readouterr().out


# --------------------------------------------------------------------------- regressions


def test_an_empty_split_is_valid(raw_dir, tmp_path):
    out = tmp_path / "no_val"
    meta = preprocess(raw_dir, out, PreprocessConfig(val_frac=0.0), workers=1, progress=False)
    assert meta["counts"]["val"] == 0 and meta["users"]["val"] == []
    assert validate_data_dir(out).ok
