"""Raw-log readers: format detection, plain and gzip, malformed rows, truncation, Balabit units."""

from __future__ import annotations

import gzip
import re
import zlib

import numpy as np
import pytest
from conftest import BALABIT_HEADER, SAPI_HEADER, movement_rows, write_csv

from trajsynth.data.raw import (
    BUTTONS,
    MOVE,
    PRESSED,
    RELEASED,
    STATES,
    RawFormatError,
    detect_format,
    find_logs,
    read_log,
    user_and_session,
)

# --------------------------------------------------------------------------- format detection


@pytest.mark.parametrize("header, fmt", [
    (SAPI_HEADER, "sapimouse"),
    (BALABIT_HEADER, "balabit"),
    ("Client Timestamp, Button ,STATE,x,y\r\n", "sapimouse"),  # case, spaces and CRLF do not matter
    (" record timestamp,client timestamp,button,state,x,y ", "balabit"),
])
def test_detect_format(header, fmt):
    assert detect_format(header) == fmt


@pytest.mark.parametrize("header", [
    "a,b,c",
    "client timestamp,button,state,x",  # a column short
    "client timestamp,state,button,x,y",  # columns in the wrong order
    "record timestamp,client timestamp,button,state,x,y,z",
])
def test_unknown_header_error_names_the_file(header):
    with pytest.raises(RawFormatError, match=r"logs/odd\.csv: unknown header") as e:
        detect_format(header, "logs/odd.csv")
    assert "client timestamp,button,state,x,y" in str(e.value)  # says what was expected


def test_read_log_unknown_header_names_the_file(tmp_path):
    path = write_csv(tmp_path / "user1" / "weird.csv", ["1,2"], header="foo,bar")
    with pytest.raises(RawFormatError, match=re.escape(str(path)) + ": unknown header 'foo,bar'"):
        read_log(path)


def test_a_byte_order_mark_before_the_header_is_ignored(tmp_path):
    """Found by tests/test_fuzz_readers.py: a UTF-8 BOM (Windows editors write one) made the header unknown."""
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join([SAPI_HEADER, *movement_rows()]) + "\n").encode())
    log, report = read_log(path)
    assert len(log) == 8 and report.rows == 8 and not report.skipped
    assert detect_format("\ufeff" + BALABIT_HEADER) == "balabit"


def test_explicit_format_must_match_the_header(tmp_path):
    path = write_csv(tmp_path / "s.csv", movement_rows())
    assert read_log(path, fmt="sapimouse")[0].t.size == 8
    with pytest.raises(RawFormatError, match=r"s\.csv: header is sapimouse format but --format balabit"):
        read_log(path, fmt="balabit")


# --------------------------------------------------------------------------- plain and gzip


def test_plain_and_gzip_read_the_same(tmp_path):
    rows = movement_rows(t0=15585, x0=967, y0=706, dx=-9, dy=-6) + movement_rows(t0=16000, button="Right")
    a, ra = read_log(write_csv(tmp_path / "a.csv", rows))
    b, rb = read_log(write_csv(tmp_path / "b.csv.gz", rows))
    for name in ("t", "x", "y", "button", "state"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert len(a) == len(rows) == ra.rows == rb.rows
    assert not ra.skipped and not rb.skipped and not rb.truncated


def test_parsed_values_and_codes(tmp_path):
    log, _ = read_log(write_csv(tmp_path / "a.csv", movement_rows(t0=100, x0=5, y0=7, n=2, dx=3, dy=4, step=10)))
    assert log.t.tolist() == [100, 110, 120, 130]
    assert log.x.tolist() == [5, 8, 11, 11] and log.y.tolist() == [7, 11, 15, 15]
    assert log.state.tolist() == [RELEASED, MOVE, MOVE, PRESSED]
    assert log.button.tolist() == [BUTTONS["Left"], BUTTONS["NoButton"], BUTTONS["NoButton"], BUTTONS["Left"]]
    assert log.t.dtype == np.float64 and log.state.dtype == np.int8


def test_gzip_detected_by_content_not_name(tmp_path):
    """A gzip stream is recognised by its magic bytes, whatever the file is called."""
    rows = movement_rows()
    path = tmp_path / "really_gzip.csv"
    path.write_bytes(gzip.compress(("\n".join([SAPI_HEADER, *rows]) + "\n").encode()))
    log, _ = read_log(path)
    assert len(log) == len(rows)


# --------------------------------------------------------------------------- malformed rows


def test_malformed_rows_are_skipped_counted_and_located(tmp_path):
    good = movement_rows()  # lines 2..9
    bad = [
        "200,NoButton,Move,5",  # line 10: 4 fields
        "abc,NoButton,Move,1,2",  # line 11: non-numeric time
        "201,NoButton,Wiggle,1,2",  # line 12: unknown state
        "202,Thumb,Move,1,2",  # line 13: unknown button
        "203,NoButton,Move,1,2,3",  # line 14: 6 fields
        "204,NoButton,Move,x,2",  # line 15: non-numeric x
    ]
    path = write_csv(tmp_path / "bad.csv", good + bad + ["300,NoButton,Move,7,8"])
    log, report = read_log(path)
    assert len(log) == report.rows == len(good) + 1
    assert log.t[-1] == 300  # rows after the bad ones are still read
    assert report.skipped == {
        "wrong number of fields": 2,
        "non-numeric timestamp or position": 2,
        "unknown button or state": 2,
    }
    # at most five examples, each naming file and line number
    assert len(report.examples) == 5
    assert report.examples[0].startswith(f"{path}:10: wrong number of fields")
    assert report.examples[1].startswith(f"{path}:11: non-numeric")
    assert report.examples[2].startswith(f"{path}:12: unknown button or state")
    assert "Wiggle" in report.examples[2]


def test_blank_lines_are_not_malformed(tmp_path):
    rows = movement_rows()
    path = write_csv(tmp_path / "blank.csv", rows[:3] + ["", "   "] + rows[3:])
    log, report = read_log(path)
    assert len(log) == len(rows) and not report.skipped


# --------------------------------------------------------------------------- empty and truncated files


@pytest.mark.parametrize("content", [b"", b"\n\n", gzip.compress(b"")])
def test_empty_file_is_an_error_naming_it(tmp_path, content):
    path = tmp_path / "user3" / "empty.csv.gz"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(RawFormatError, match=re.escape(str(path)) + ": file is empty"):
        read_log(path)


def test_header_only_file_gives_an_empty_log(tmp_path):
    log, report = read_log(write_csv(tmp_path / "h.csv", []))
    assert len(log) == 0 and report.rows == 0 and not report.skipped


def test_truncated_gzip_keeps_the_readable_part(tmp_path):
    rows = [f"{1000 + 17 * i},NoButton,Move,{i % 1900},{(7 * i) % 1000}" for i in range(20_000)]
    data = gzip.compress(("\n".join([SAPI_HEADER, *rows]) + "\n").encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    log, report = read_log(path)
    assert report.truncated
    assert "truncated or corrupt gzip stream" in " ".join(report.skipped)
    assert any(e.startswith(str(path)) for e in report.examples)
    n = len(log)
    assert 0.1 * len(rows) < n < len(rows)
    # what was kept is an exact prefix of the file: no partial last line, no garbage
    full, _ = read_log(write_csv(tmp_path / "full.csv", rows))
    assert np.array_equal(log.t, full.t[:n]) and np.array_equal(log.x, full.x[:n]) and np.array_equal(log.y, full.y[:n])


def test_truncated_gzip_drops_the_partial_last_line(tmp_path):
    """A stream cut inside a number must not yield a row with a shortened value."""
    complete = [f"{17 * i},NoButton,Move,{100 + i},456" for i in range(50)]
    text = "\n".join([SAPI_HEADER, *complete]) + "\n" + "9999,NoButton,Move,123,4"  # y was 456
    comp = zlib.compressobj(wbits=31)  # gzip container
    data = comp.compress(text.encode()) + comp.flush(zlib.Z_SYNC_FLUSH)  # decodable, but no gzip trailer
    path = tmp_path / "cut_mid_line.csv.gz"
    path.write_bytes(data)
    log, report = read_log(path)
    assert report.truncated
    assert len(log) == len(complete) and log.t[-1] == 17 * 49 and np.all(log.y == 456)


def test_gzip_with_garbage_after_the_header_bytes_is_empty(tmp_path):
    data = gzip.compress(("\n".join([SAPI_HEADER, *movement_rows()]) + "\n").encode())
    path = tmp_path / "garbage.csv.gz"
    path.write_bytes(data[:10] + b"\x00not deflate data" * 10)
    with pytest.raises(RawFormatError, match="garbage.csv.gz: file is empty"):
        read_log(path)


# --------------------------------------------------------------------------- Balabit


def test_balabit_client_seconds_become_milliseconds(tmp_path):
    rows = [
        "0.0,0.0,NoButton,Move,1043,410",
        "0.231999874115,0.0939999999828,NoButton,Move,1024,410",
        "0.5,1.5,Left,Pressed,979,409",
        "9.0,2.25,Left,Released,65535,65535",
    ]
    log, report = read_log(write_csv(tmp_path / "b.csv", rows, header=BALABIT_HEADER))
    assert not report.skipped
    # the client timestamp (2nd column) is used, not the record timestamp
    assert np.allclose(log.t, [0.0, 93.9999999828, 1500.0, 2250.0])
    assert log.x.tolist() == [1043, 1024, 979, 65535]
    assert log.state.tolist() == [MOVE, MOVE, PRESSED, RELEASED]


def test_balabit_scroll_states_are_known(tmp_path):
    rows = ["0.0,0.1,Scroll,Down,10,10", "0.0,0.2,Scroll,Up,10,10"]
    log, report = read_log(write_csv(tmp_path / "s.csv", rows, header=BALABIT_HEADER))
    assert len(log) == 2 and not report.skipped
    assert log.state.tolist() == [STATES["Down"], STATES["Up"]]


def test_real_balabit_file_is_read_in_milliseconds(balabit_raw):
    path = sorted((balabit_raw / "training_files").rglob("*.csv.gz"))[0]
    log, report = read_log(path)
    assert len(log) > 1000 and not report.skipped and not report.truncated
    gaps = np.diff(log.t)
    # ~10 Hz bunches: the typical positive gap is tens of ms (it would be ~0.09 if seconds were kept)
    assert 20 < np.median(gaps[gaps > 0]) < 500


def test_real_sapimouse_file_reads_cleanly(sapimouse_raw):
    path = sapimouse_raw / "user1" / "session_2020_05_14_1min.csv.gz"
    if not path.exists():
        path = sorted(sapimouse_raw.rglob("*.csv.gz"))[0]
    log, report = read_log(path)
    assert len(log) > 1000 and report.rows == len(log) and not report.skipped
    assert 10 < np.median(np.diff(log.t)) < 30  # ~60 Hz


# --------------------------------------------------------------------------- files, users, sessions


def test_find_logs_is_sorted_and_filters_extensions(tmp_path):
    for name in ("b/s2.csv.gz", "a/s1.csv", "a/notes.txt", "a/s0.csv.bak", "c/deep/s3.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    files = find_logs(tmp_path)
    assert [str(f.relative_to(tmp_path)) for f in files] == ["a/s1.csv", "b/s2.csv.gz", "c/deep/s3.csv"]


def test_find_logs_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_logs(tmp_path / "missing")
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(FileNotFoundError, match="no .csv or .csv.gz files"):
        find_logs(tmp_path)


@pytest.mark.parametrize("rel, expected", [
    ("user12/session_2020_05_14_1min.csv.gz", ("user12", "session_2020_05_14_1min")),
    ("training_files/user7/session_0205904470.csv.gz", ("user7", "session_0205904470")),
    ("test_files/user9/session_1.csv", ("user9", "session_1")),
    ("loose.csv", ("unknown", "loose")),
])
def test_user_and_session(tmp_path, rel, expected):
    assert user_and_session(tmp_path / rel, tmp_path) == expected


# --------------------------------------------------------------------------- regressions


def test_non_finite_numbers_are_skipped_as_malformed(tmp_path):
    rows = movement_rows()
    rows[2] = rows[2].split(",")[0] + ",NoButton,Move,nan,100"
    rows[3] = "nan," + rows[3].split(",", 1)[1]
    log, report = read_log(write_csv(tmp_path / "nan.csv", rows))
    assert np.isfinite(log.t).all() and np.isfinite(log.x).all()
    assert report.skipped.get("non-numeric timestamp or position") == 2


def test_large_finite_numbers_are_kept(tmp_path):
    """A row of finite numbers whose sum overflows (x = y = 1e308) was skipped as non-numeric."""
    rows = [*movement_rows(), "300,NoButton,Move,1e308,1e308", "301,NoButton,Move,-1e308,1e308"]
    log, report = read_log(write_csv(tmp_path / "big.csv", rows))
    assert len(log) == len(rows) and not report.skipped
    assert log.x[-2:].tolist() == [1e308, -1e308]
