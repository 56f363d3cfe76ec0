"""Raw-log readers, cleaning and segmentation on small hand-written logs."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from trajsynth.data.raw import RawFormatError, detect_format, read_log
from trajsynth.data.segment import SegmentConfig, SegmentStats, segment_log

SAPI_HEADER = "client timestamp,button,state,x,y"


def write(path, rows, header=SAPI_HEADER, gz=False):
    text = "\n".join([header, *rows]) + "\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def movement(t0=0, x0=100, y0=100, n=6, dx=40, dy=0, step=17):
    """Released, n moves, Pressed: a straight movement of n*dx px."""
    rows = [f"{t0},Left,Released,{x0},{y0}"]
    rows += [f"{t0 + step * (i + 1)},NoButton,Move,{x0 + dx * (i + 1)},{y0 + dy * (i + 1)}" for i in range(n)]
    rows.append(f"{t0 + step * (n + 1)},Left,Pressed,{x0 + dx * n},{y0 + dy * n}")
    return rows


def segments(log, **kw):
    stats = SegmentStats()
    return segment_log(log, "u1", "s1", SegmentConfig(**kw), stats), stats


def test_detect_format():
    assert detect_format(SAPI_HEADER) == "sapimouse"
    assert detect_format("record timestamp,client timestamp,button,state,x,y") == "balabit"
    with pytest.raises(RawFormatError, match="f.csv: unknown header"):
        detect_format("a,b,c", "f.csv")


def test_plain_and_gzip_read_the_same(tmp_path):
    rows = movement()
    a, _ = read_log(write(tmp_path / "a.csv", rows))
    b, _ = read_log(write(tmp_path / "b.csv.gz", rows, gz=True))
    assert np.array_equal(a.t, b.t) and np.array_equal(a.x, b.x) and len(a) == len(rows)


def test_balabit_seconds_become_ms(tmp_path):
    hdr = "record timestamp,client timestamp,button,state,x,y"
    log, _ = read_log(write(tmp_path / "b.csv", ["0.0,1.5,NoButton,Move,3,4"], header=hdr))
    assert log.t[0] == 1500.0


def test_malformed_rows_are_skipped_and_named(tmp_path):
    rows = movement() + ["12,NoButton,Move,5", "abc,NoButton,Move,1,2", "13,NoButton,Wiggle,1,2"]
    log, report = read_log(write(tmp_path / "bad.csv", rows))
    assert len(log) == len(movement())
    assert sum(report.skipped.values()) == 3
    assert any("bad.csv:10" in e for e in report.examples), report.examples


def test_empty_and_unknown_files_raise_with_name(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(RawFormatError, match="empty.csv: file is empty"):
        read_log(tmp_path / "empty.csv")
    with pytest.raises(RawFormatError, match="other.csv: unknown header"):
        read_log(write(tmp_path / "other.csv", ["1,2"], header="foo,bar"))
    with pytest.raises(RawFormatError, match="--format balabit"):
        read_log(write(tmp_path / "s.csv", movement()), fmt="balabit")


def test_truncated_gzip_keeps_the_readable_part(tmp_path):
    rows = movement() * 50
    data = gzip.compress(("\n".join([SAPI_HEADER, *rows]) + "\n").encode())
    (tmp_path / "cut.csv.gz").write_bytes(data[: len(data) // 2])
    log, report = read_log(tmp_path / "cut.csv.gz")
    assert report.truncated and 0 < len(log) < len(rows)


def test_segmentation_keeps_release_to_press(tmp_path):
    rows = movement(0) + movement(1000, x0=500, dy=30, dx=0)
    log, _ = read_log(write(tmp_path / "m.csv", rows))
    segs, stats = segments(log)
    assert len(segs) == 2 and stats.kept == 2
    assert segs[0].points.shape == (8, 3) and segs[0].distance == pytest.approx(240)
    assert (segs[0].user, segs[0].session, segs[0].action) == ("u1", "s1", "Left_click")


def test_drags_are_excluded(tmp_path):
    rows = movement()
    rows.insert(3, "40,Left,Drag,150,100")
    log, _ = read_log(write(tmp_path / "d.csv", rows))
    segs, stats = segments(log)
    assert segs == [] and stats.dropped_segments["contains a drag"] == 1


def test_cleaning_artefacts_clock_jumps_duplicates(tmp_path):
    rows = movement()
    rows.insert(2, rows[1])  # exact duplicate event
    rows.insert(4, "5,NoButton,Move,999,999")  # goes back in time
    rows.insert(5, "60,NoButton,Move,65535,65535")  # Balabit artefact
    log, _ = read_log(write(tmp_path / "c.csv", rows))
    segs, stats = segments(log)
    assert stats.dropped_events["duplicate event"] == 1
    assert stats.dropped_events["non-monotonic timestamp"] == 1
    assert stats.dropped_events["artefact coordinate"] == 1
    assert len(segs) == 1 and segs[0].points[:, 1].max() < 1000


def test_equal_timestamps_keep_the_later_position(tmp_path):
    rows = movement()
    rows.insert(2, rows[1].split(",")[0] + ",NoButton,Move,777,100")  # same time as the first move
    log, _ = read_log(write(tmp_path / "z.csv", rows))
    (seg,), _ = segments(log)
    assert np.all(np.diff(seg.points[:, 0]) > 0)
    assert 777 in seg.points[:, 1]


def test_pause_split_and_drop(tmp_path):
    rows = movement(step=17)
    # a 2-second pause after the second move
    rows = rows[:3] + [f"{int(r.split(',')[0]) + 2000},{r.split(',', 1)[1]}" for r in rows[3:]]
    log, _ = read_log(write(tmp_path / "p.csv", rows))
    (seg,), _ = segments(log, pause_ms=1000, pause_policy="split")
    assert seg.points[0, 0] >= 2000 and seg.duration < 1000
    segs, stats = segments(log, pause_ms=1000, pause_policy="drop")
    assert segs == [] and stats.dropped_segments["long pause (pause_policy=drop)"] == 1


def test_distance_and_duration_rules(tmp_path):
    log, _ = read_log(write(tmp_path / "r.csv", movement(dx=1)))  # 6 px
    assert segments(log, min_distance=10)[0] == []
    log, _ = read_log(write(tmp_path / "s.csv", movement(step=500, n=4)))  # 2.5 s
    assert segments(log, max_duration=1000, pause_ms=5000)[0] == []
    with pytest.raises(ValueError):
        SegmentConfig(pause_policy="maybe")
