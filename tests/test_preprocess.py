"""Raw logs → data directory: splits, determinism, output-dir safety, bad files, the embedded sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import RAW_SEGMENTS, RAW_USERS, write_csv, write_raw_dir

from trajsynth.cli.main import main
from trajsynth.data.directory import SPLITS, load_meta, load_params, load_split, split_users
from trajsynth.data.embedded import embedded_data_dir, load_embedded_segments
from trajsynth.data.features import FEATURE_NAMES
from trajsynth.data.preprocess import PreprocessConfig, preprocess
from trajsynth.data.segment import SegmentConfig
from trajsynth.data.validate import validate_data_dir

ARRAY_FILES = [f"{k}_{s}.npy" for k in ("X", "C", "L") for s in SPLITS]


def run(raw, out, **kw):
    cfg = kw.pop("cfg", PreprocessConfig())
    return preprocess(raw, out, cfg, workers=kw.pop("workers", 1), progress=False, **kw)


def leftovers(parent: Path) -> list[str]:
    """Temporary siblings left behind by an atomic write."""
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------- the happy path


def test_preprocess_writes_a_valid_user_disjoint_directory(raw_dir, tmp_path):
    out = tmp_path / "out"
    meta = run(raw_dir, out)
    assert sum(meta["counts"].values()) == RAW_SEGMENTS
    assert len(meta["source_files"]) == RAW_USERS and meta["skipped_files"] == [] and meta["messages"] == []
    users = {s: set(meta["users"][s]) for s in SPLITS}
    assert set().union(*users.values()) == {f"user{u}" for u in range(RAW_USERS)}
    assert sum(len(u) for u in users.values()) == RAW_USERS  # each user in exactly one split
    assert all(users.values())  # 6 users: 4 / 1 / 1
    for split in SPLITS:
        s = load_split(out, split)
        assert set(s.user.tolist()) == users[split] and len(s) == meta["counts"][split]
        assert set(s.action.tolist()) == {"Left_click"} and set(s.session.tolist()) == {"session_1"}
    report = validate_data_dir(out)
    assert report.ok, report.errors
    assert leftovers(tmp_path) == []


def test_meta_records_format_and_config(raw_dir, tmp_path):
    cfg = PreprocessConfig(max_seq_len=80, seed=9, segment=SegmentConfig(min_distance=15.0))
    meta = run(raw_dir, tmp_path / "o", cfg=cfg)
    on_disk = load_meta(tmp_path / "o")
    assert on_disk["users"] == meta["users"] and on_disk["counts"] == meta["counts"]
    assert on_disk["data_format"] == "trajsynth-v4" and on_disk["feature_names"] == list(FEATURE_NAMES)
    assert on_disk["max_seq_len"] == 80 and on_disk["config"]["seed"] == 9
    assert on_disk["config"]["segment"]["min_distance"] == 15.0
    assert on_disk["source_dir"] == "raw" and sorted(on_disk["source_files"])[0] == "user0/session_1.csv.gz"
    assert load_params(tmp_path / "o").d_min == 15.0  # the condition range follows the segment rules
    assert np.load(tmp_path / "o" / "X_train.npy").shape[1:] == (80, 8)


def test_segment_rules_reach_the_output(raw_dir, tmp_path):
    meta = run(raw_dir, tmp_path / "o", cfg=PreprocessConfig(segment=SegmentConfig(min_distance=200.0)))
    dropped = meta["dropped_movements"]["shorter than min_distance"]
    assert dropped > 10 and sum(meta["counts"].values()) == RAW_SEGMENTS - dropped
    assert meta["candidate_movements"] == RAW_SEGMENTS


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_arrays(raw_dir, tmp_path):
    a = run(raw_dir, tmp_path / "a", cfg=PreprocessConfig(seed=4))
    b = run(raw_dir, tmp_path / "b", cfg=PreprocessConfig(seed=4), workers=2)  # process pool: same result
    assert a["users"] == b["users"] and a["counts"] == b["counts"]
    for name in ARRAY_FILES:
        assert np.array_equal(np.load(tmp_path / "a" / name), np.load(tmp_path / "b" / name)), name
    for split in SPLITS:
        with np.load(tmp_path / "a" / f"paths_{split}.npz") as za, np.load(tmp_path / "b" / f"paths_{split}.npz") as zb:
            assert za.files == zb.files and all(np.array_equal(za[k], zb[k]) for k in za.files)
    assert (tmp_path / "a" / "normalization_params.json").read_text() == (
        tmp_path / "b" / "normalization_params.json").read_text()


def test_seed_changes_the_user_split(raw_dir, tmp_path):
    users = [f"user{u}" for u in range(RAW_USERS)]
    seed = next(s for s in range(1, 20) if split_users(users, 0.15, 0.15, s) != split_users(users, 0.15, 0.15, 0))
    a = run(raw_dir, tmp_path / "a", cfg=PreprocessConfig(seed=0))
    b = run(raw_dir, tmp_path / "b", cfg=PreprocessConfig(seed=seed))
    assert a["users"] != b["users"] and sum(a["counts"].values()) == sum(b["counts"].values())


# --------------------------------------------------------------------------- the output directory


def test_refuses_an_existing_non_empty_out_dir(raw_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="--overwrite"):
        run(raw_dir, out)
    assert [p.name for p in out.iterdir()] == ["precious.txt"] and leftovers(tmp_path) == []


def test_an_existing_empty_out_dir_is_fine(raw_dir, tmp_path):
    (tmp_path / "out").mkdir()
    run(raw_dir, tmp_path / "out")
    assert validate_data_dir(tmp_path / "out").ok


def test_out_path_that_is_a_file_is_refused(raw_dir, tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(FileExistsError):
        run(raw_dir, tmp_path / "out")
    assert (tmp_path / "out").read_text() == "a file"


def test_overwrite_replaces(raw_dir, tmp_path):
    out = tmp_path / "out"
    run(raw_dir, out, cfg=PreprocessConfig(seed=4))
    (out / "stale.txt").write_text("from an older run")
    run(raw_dir, out, cfg=PreprocessConfig(seed=5), overwrite=True)
    assert load_meta(out)["config"]["seed"] == 5 and not (out / "stale.txt").exists()
    assert validate_data_dir(out).ok and leftovers(tmp_path) == []


def test_cli_overwrite_flag(raw_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["preprocess", str(raw_dir), str(out), "--quiet", "--workers", "1", "--seed", "4"]) == 0
    (out / "stale.txt").write_text("x")
    assert main(["preprocess", str(raw_dir), str(out), "--quiet", "--workers", "1", "--seed", "6"]) == 2
    assert "already exists" in capsys.readouterr().err and (out / "stale.txt").exists()
    assert main(["preprocess", str(raw_dir), str(out), "--quiet", "--workers", "1", "--seed", "6",
                 "--overwrite"]) == 0
    assert load_meta(out)["config"]["seed"] == 6 and not (out / "stale.txt").exists()


# --------------------------------------------------------------------------- bad input


def test_bad_files_are_skipped_with_a_message(raw_dir, tmp_path):
    write_csv(raw_dir / "user0" / "weird_header.csv", ["1,2,3"], header="what,is,this")
    (raw_dir / "user1" / "empty.csv").write_text("")
    (raw_dir / "user2" / "broken.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    meta = run(raw_dir, tmp_path / "o")
    assert sum(meta["counts"].values()) == RAW_SEGMENTS  # the rest is processed
    assert len(meta["skipped_files"]) == 3 and len(meta["source_files"]) == RAW_USERS + 3
    joined = "\n".join(meta["skipped_files"])
    assert "weird_header.csv: unknown header" in joined and "empty.csv: file is empty" in joined
    assert "broken.csv.gz" in joined
    assert all(m.startswith("skipped file: ") for m in meta["skipped_files"])
    assert load_meta(tmp_path / "o")["skipped_files"] == meta["skipped_files"]
    assert validate_data_dir(tmp_path / "o").ok


def test_cli_warns_about_skipped_files(raw_dir, tmp_path, capsys):
    (raw_dir / "user1" / "empty.csv").write_text("")
    assert main(["preprocess", str(raw_dir), str(tmp_path / "o"), "--quiet", "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "warning: skipped file:" in captured.err and "empty.csv" in captured.err
    assert "skipped files: 1" in captured.out


def test_malformed_rows_are_counted_in_meta(raw_dir, tmp_path):
    path = raw_dir / "user3" / "session_1.csv"
    path.write_text(path.read_text() + "999999,NoButton,Move,1\nabc,NoButton,Move,1,2\n")
    meta = run(raw_dir, tmp_path / "o")
    assert meta["skipped_rows"] == {"wrong number of fields": 1, "non-numeric timestamp or position": 1}
    assert any("session_1.csv:" in m for m in meta["messages"])
    assert sum(meta["counts"].values()) == RAW_SEGMENTS


def test_truncated_gzip_file_contributes_its_readable_part(raw_dir, tmp_path):
    path = raw_dir / "user0" / "session_1.csv.gz"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.7)])
    meta = run(raw_dir, tmp_path / "o")
    assert 0 < meta["rows_read"] and "truncated or corrupt gzip stream" in " ".join(meta["skipped_rows"])
    assert RAW_SEGMENTS - 20 < sum(meta["counts"].values()) < RAW_SEGMENTS  # user0 keeps some movements


def test_nothing_usable_is_an_error_and_writes_nothing(tmp_path):
    write_csv(tmp_path / "raw" / "u1" / "x.csv", ["1,2"], header="foo,bar")
    with pytest.raises(ValueError, match="no usable movements"):
        run(tmp_path / "raw", tmp_path / "o")
    assert not (tmp_path / "o").exists() and leftovers(tmp_path) == []


def test_missing_or_empty_raw_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run(tmp_path / "nope", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .csv"):
        run(tmp_path / "empty", tmp_path / "o")


def test_too_few_users(tmp_path):
    raw = write_raw_dir(tmp_path / "raw", n=40, n_users=2)
    with pytest.raises(ValueError, match="at least 3 users"):
        run(raw, tmp_path / "o")
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- the embedded sample


def test_embedded_data_dir_validates(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJSYNTH_CACHE", str(tmp_path / "cache"))
    d = embedded_data_dir()
    assert d.parent == tmp_path / "cache" and d.name.startswith("embedded-")
    report = validate_data_dir(d)
    assert report.ok, report.errors
    meta = load_meta(d)
    n_segments = len(load_embedded_segments())
    assert sum(meta["counts"].values()) + meta["dropped_movements"].get("more than 100 points", 0) == n_segments
    assert len(set().union(*map(set, meta["users"].values()))) >= 10
    assert "SapiMouse" in meta["citation"]
    assert embedded_data_dir() == d  # cached: same folder, not rebuilt
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [d.name]


def test_embedded_data_dir_depends_on_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJSYNTH_CACHE", str(tmp_path / "cache"))
    d = embedded_data_dir(PreprocessConfig(max_seq_len=60, long_policy="resample"))
    assert np.load(d / "X_train.npy").shape[1] == 60 and validate_data_dir(d).ok
    meta = json.loads((d / "meta.json").read_text())
    assert meta["resampled_movements"] > 0
