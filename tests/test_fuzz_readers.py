"""Fuzzing the raw-log readers and the segmentation with mutated CSV bytes (plain, gzip, truncated gzip).

Property: ``read_log`` returns a log of finite numbers and known codes (and segmentation cuts it into
movements with finite points, strictly increasing times and the configured limits), or raises the
readers' own clean error: a ``RawFormatError`` (a ValueError) with a one-line message. Never another
exception type, never an error from numpy's or the standard library's internals. ``process_file``
(one file of ``preprocess``) never raises at all.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
from conftest import BALABIT_HEADER, SAPI_HEADER, movement_rows
from fuzzing import assert_clean_error, count_case, raised_in_package
from hypothesis import given
from hypothesis import strategies as st

from trajsynth.data.preprocess import PreprocessConfig, process_file
from trajsynth.data.raw import BUTTONS, STATES, EventLog, RawFormatError, read_log
from trajsynth.data.segment import SegmentConfig, SegmentStats, clean_log, segment_log

CFG = SegmentConfig()

# --------------------------------------------------------------------------- strategies

NUMBERS = st.one_of(
    st.integers(-10**6, 10**7).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e308", "-1e308", "1e309", "9" * 400, "1_000", " 12 ",
                     "0x10", "", "-0", "1e-320", "١٢"]),
)
WORDS = st.one_of(
    st.sampled_from([*BUTTONS, *STATES, "left", "Move ", "Pressed\r", "Drag", "", "None"]),
    st.text(max_size=12),
)
FIELD = st.one_of(NUMBERS, WORDS)


@st.composite
def valid_row(draw, fmt: str) -> str:
    t = draw(st.integers(-1000, 10**6))
    button, state = draw(st.sampled_from(list(BUTTONS))), draw(st.sampled_from(list(STATES)))
    x, y = draw(st.integers(-3000, 70000)), draw(st.integers(-3000, 70000))
    if fmt == "balabit":
        return f"{t / 1000:.3f},{t / 1000:.3f},{button},{state},{x},{y}"
    return f"{t},{button},{state},{x},{y}"


@st.composite
def mutated_row(draw, fmt: str) -> str:
    row = draw(valid_row(fmt)).split(",")
    kind = draw(st.sampled_from(["field", "count", "empty", "junk", "unicode"]))
    if kind == "field":
        row[draw(st.integers(0, len(row) - 1))] = draw(FIELD)
    elif kind == "count":
        row = draw(st.lists(FIELD, max_size=9))
    elif kind == "empty":
        return draw(st.sampled_from(["", " ", "\t", ",,,,", ",,,,,"]))
    elif kind == "junk":
        return draw(st.text(max_size=40))
    else:
        row[draw(st.integers(0, len(row) - 1))] += draw(st.text(st.characters(min_codepoint=0x80), max_size=4))
    return ",".join(row)


def _balabit(rows: list[str]) -> list[str]:
    """SapiMouse rows (ms) as Balabit rows (record and client timestamps in s)."""
    out = []
    for r in rows:
        t, rest = r.split(",", 1)
        out.append(f"{int(t) / 1000:.3f},{int(t) / 1000:.3f},{rest}")
    return out


@st.composite
def movements(draw, fmt: str) -> list[str]:
    """A few valid release → moves → press movements, one after the other."""
    rows, t0 = [], draw(st.integers(-1000, 5000))
    for _ in range(draw(st.integers(0, 4))):
        n, step = draw(st.integers(1, 12)), draw(st.integers(1, 400))
        rows += movement_rows(t0=t0, x0=draw(st.integers(-500, 2000)), y0=draw(st.integers(-500, 2000)), n=n,
                              dx=draw(st.integers(-80, 80)), dy=draw(st.integers(-80, 80)), step=step,
                              button=draw(st.sampled_from(["Left", "Right"])))
        t0 += step * (n + 2) + draw(st.integers(0, 2000))
    return _balabit(rows) if fmt == "balabit" else rows


@st.composite
def csv_text(draw) -> str:
    fmt = draw(st.sampled_from(["sapimouse", "balabit"]))
    header = SAPI_HEADER if fmt == "sapimouse" else BALABIT_HEADER
    odd = [header.upper(), f" {header} ", "\ufeff" + header, header + ",z", "", draw(st.text(max_size=30))]
    header = draw(st.sampled_from(odd)) if draw(st.integers(0, 3)) == 0 else header
    rows = draw(movements(fmt))
    for _ in range(draw(st.integers(0, 6))):  # mutations: replace, insert or delete a row
        i = draw(st.integers(0, len(rows)))
        what = draw(st.sampled_from(["replace", "insert", "delete"]))
        new = draw(st.one_of(valid_row(fmt), mutated_row(fmt)))
        if what == "insert" or i == len(rows):
            rows.insert(i, new)
        elif what == "replace":
            rows[i] = new
        else:
            del rows[i]
    rows = draw(st.permutations(rows)) if draw(st.integers(0, 9)) == 0 else rows
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return newline.join([header, *rows]) + draw(st.sampled_from(["", newline]))


@st.composite
def file_bytes(draw) -> bytes:
    data = draw(csv_text()).encode("utf-8", errors="surrogatepass")
    kind = draw(st.sampled_from(["plain", "plain", "gzip", "truncated", "flipped", "latin1"]))
    if kind == "latin1":
        return data.decode("utf-8", errors="replace").encode("latin-1", errors="replace")
    if kind != "plain":
        data = gzip.compress(data)
    if kind == "truncated":
        data = data[: draw(st.integers(0, len(data)))]
    elif kind == "flipped":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1 :]
    return data


# --------------------------------------------------------------------------- checks


def _check_log(log, report) -> None:
    n = len(log.t)
    assert all(len(a) == n for a in (log.x, log.y, log.button, log.state))
    assert log.t.dtype == np.float64 and log.button.dtype == np.int8 and log.state.dtype == np.int8
    assert np.isfinite(log.t).all() and np.isfinite(log.x).all() and np.isfinite(log.y).all()
    assert set(log.button.tolist()) <= set(BUTTONS.values()) and set(log.state.tolist()) <= set(STATES.values())
    assert report.rows == n
    assert len(report.examples) <= 5 and all("\n" not in e for e in report.examples)


def _check_segments(log, segs, stats: SegmentStats) -> None:
    for s in segs:
        p = s.points
        assert p.ndim == 2 and p.shape[1] == 3 and len(p) >= CFG.min_points
        assert np.isfinite(p).all()
        assert np.all(np.diff(p[:, 0]) > 0), "times must increase strictly within a movement"
        assert CFG.min_distance <= s.distance <= CFG.max_distance
        assert s.duration <= CFG.max_duration and np.all(np.diff(p[:, 0]) <= CFG.pause_ms)
        assert s.action.endswith("_click")
    assert stats.kept == len(segs) and stats.events == len(log)


def _read(path: Path):
    try:
        return read_log(path)
    except Exception as e:  # noqa: BLE001 - the property is about which exceptions escape
        assert_clean_error(e, (RawFormatError,))
        assert raised_in_package(e), f"error raised outside the package: {e!r}"
        return None


# --------------------------------------------------------------------------- properties


@given(data=file_bytes(), gz_name=st.booleans())
def test_read_and_segment_mutated_logs(tmp_path_factory, data, gz_name):
    count_case()
    path = tmp_path_factory.mktemp("log") / ("s.csv.gz" if gz_name else "s.csv")
    path.write_bytes(data)
    got = _read(path)
    if got is None:
        return
    log, report = got
    _check_log(log, report)
    stats = SegmentStats()
    cleaned = clean_log(log, SegmentStats())
    assert np.all(np.diff(cleaned.t) >= 0), "cleaned times must be monotone"
    _check_segments(log, segment_log(log, "u", "s", CFG, stats), stats)


@given(data=file_bytes())
def test_process_file_never_raises(tmp_path_factory, data):
    count_case()
    raw = tmp_path_factory.mktemp("raw")
    path = raw / "user1" / "session_1.csv"
    path.parent.mkdir()
    path.write_bytes(data)
    result = process_file(path, raw, PreprocessConfig())
    assert all(isinstance(m, str) and m for m in result.messages)
    assert result.stats.kept == len(result.segments)
    assert all(np.isfinite(s.points).all() for s in result.segments)


@given(t=st.lists(st.floats(-1e308, 1e308), min_size=1, max_size=30), data=st.data())
def test_segmentation_of_extreme_clocks(t, data):
    """Arbitrary finite clocks and positions (huge, negative, repeated) segment without an exception."""
    count_case()
    n = len(t)
    coords = st.lists(st.floats(-1e308, 1e308), min_size=n, max_size=n)
    codes = st.lists(st.sampled_from([0, 1, 2, 3]), min_size=n, max_size=n)
    log = EventLog(np.array(t), np.array(data.draw(coords)), np.array(data.draw(coords)),
                   np.array(data.draw(codes), np.int8), np.array(data.draw(codes), np.int8))
    stats = SegmentStats()
    with np.errstate(over="ignore", invalid="ignore"):
        segs = segment_log(log, "u", "s", CFG, stats)
    _check_segments(log, segs, stats)
    assert all(math.isfinite(s.distance) for s in segs)
