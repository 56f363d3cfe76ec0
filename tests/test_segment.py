"""Cleaning and segmentation: release → moves → press, and every rule that drops something."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_log, movement_events

from trajsynth.data.raw import read_log
from trajsynth.data.segment import Segment, SegmentConfig, SegmentStats, clean_log, segment_log


def cut(events, user="u1", session="s1", **cfg):
    stats = SegmentStats()
    segs = segment_log(make_log(events), user, session, SegmentConfig(**cfg), stats)
    return segs, stats


# --------------------------------------------------------------------------- the basic rule


def test_release_moves_press_is_one_movement():
    (seg,), stats = cut(movement_events(t0=0, x0=100, y0=200, n=4, dx=30, dy=40, step=17))
    expected = [[0, 100, 200], [17, 130, 240], [34, 160, 280], [51, 190, 320], [68, 220, 360], [85, 220, 360]]
    assert np.array_equal(seg.points, np.array(expected, float))
    assert seg.distance == pytest.approx(200.0) and seg.duration == 85
    assert (stats.events, stats.candidates, stats.kept) == (6, 1, 1)
    assert sum(stats.dropped_segments.values()) == 0


def test_user_session_and_action_are_kept():
    events = movement_events(t0=0) + movement_events(t0=1000, x0=500, dx=0, dy=30, button="Right")
    segs, _ = cut(events, user="user42", session="session_2020_05_14_1min")
    assert [(s.user, s.session, s.action) for s in segs] == [
        ("user42", "session_2020_05_14_1min", "Left_click"),
        ("user42", "session_2020_05_14_1min", "Right_click"),
    ]
    assert segs[1].points[0].tolist() == [1000, 500, 100]


def test_only_release_to_next_press_counts():
    events = [
        (0, "NoButton", "Move", 10, 10),  # moves before any release: not part of a movement
        (10, "NoButton", "Move", 20, 20),
        (20, "Left", "Pressed", 30, 30),  # a press with no release before it
        (30, "Left", "Released", 30, 30),
        (40, "Left", "Released", 50, 50),  # two releases in a row: the later one starts the movement
        *[(50 + 10 * i, "NoButton", "Move", 50 + 20 * i, 50) for i in range(1, 4)],
        (100, "Left", "Pressed", 150, 50),
        (110, "Left", "Pressed", 150, 50),  # press after press: nothing
    ]
    (seg,), stats = cut(events)
    assert stats.candidates == 1
    assert seg.points[0].tolist() == [40, 50, 50] and seg.points[-1].tolist() == [100, 150, 50]
    assert len(seg.points) == 5


def test_other_states_between_release_and_press_are_not_points():
    events = movement_events(n=4)
    events.insert(2, (events[1][0] + 1, "Scroll", "Down", 999, 999))
    (seg,), _ = cut(events)
    assert 999 not in seg.points[:, 1] and len(seg.points) == 6


# --------------------------------------------------------------------------- drags


def test_drags_are_excluded_and_counted():
    dragged = movement_events(t0=0)
    dragged.insert(3, (dragged[2][0] + 1, "Left", "Drag", 170, 100))
    events = dragged + movement_events(t0=1000, x0=400)
    segs, stats = cut(events)
    assert stats.candidates == 2 and stats.dropped_segments["contains a drag"] == 1
    assert len(segs) == 1 and segs[0].points[0, 0] == 1000  # the clean movement survives


# --------------------------------------------------------------------------- cleaning


@pytest.mark.parametrize("x, y", [(65535, 300), (300, 65535), (65535, 65535), (70000, 300)])
def test_artefact_coordinates_are_dropped(x, y):
    events = movement_events(n=6)
    events.insert(3, (events[2][0] + 1, "NoButton", "Move", x, y))
    (seg,), stats = cut(events)
    assert stats.dropped_events["artefact coordinate"] == 1
    assert seg.points[:, 1:].max() < 1000
    assert len(seg.points) == 8


def test_artefacts_are_dropped_before_the_timestamp_check():
    """An artefact stamped ahead of time must not make the real events after it look non-monotonic."""
    events = movement_events(n=6, step=17)
    events.insert(3, (events[2][0] + 30, "NoButton", "Move", 65535, 65535))  # t=64, the next event is at 51
    (seg,), stats = cut(events)
    assert stats.dropped_events["artefact coordinate"] == 1
    assert stats.dropped_events["non-monotonic timestamp"] == 0
    assert len(seg.points) == 8 and seg.points[:, 1:].max() < 1000


def test_negative_coordinates_are_kept():
    """Multi-monitor desktops give real negative positions: they are not artefacts."""
    events = movement_events(x0=-300, y0=-50, n=6, dx=40)
    (seg,), stats = cut(events)
    assert stats.dropped_events["artefact coordinate"] == 0
    assert seg.points[0].tolist() == [0, -300, -50] and len(seg.points) == 8


def test_non_monotonic_timestamps_are_dropped_and_counted():
    events = movement_events(n=6, step=17)
    events.insert(3, (5, "NoButton", "Move", 999, 999))  # goes back in time
    events.insert(4, (6, "NoButton", "Move", 998, 999))  # still before the running maximum
    (seg,), stats = cut(events)
    assert stats.dropped_events["non-monotonic timestamp"] == 2
    assert np.all(np.diff(seg.points[:, 0]) > 0)
    assert 999 not in seg.points[:, 1] and 998 not in seg.points[:, 1]


def test_exact_duplicates_are_removed():
    events = movement_events(n=6)
    events.insert(2, events[1])
    events.insert(2, events[1])
    log = make_log(events)
    stats = SegmentStats()
    cleaned = clean_log(log, stats)
    assert stats.dropped_events["duplicate event"] == 2 and len(cleaned) == len(log) - 2
    (seg,), _ = cut(events)
    assert len(seg.points) == 8


def test_same_time_and_place_but_other_state_is_not_a_duplicate():
    events = movement_events(n=3)
    t, _, _, x, y = events[-1]
    events.insert(-1, (t, "NoButton", "Move", x, y))  # a move at the press's time and place
    stats = SegmentStats()
    assert len(clean_log(make_log(events), stats)) == len(events)
    assert stats.dropped_events["duplicate event"] == 0


def test_equal_timestamps_keep_the_later_position():
    events = movement_events(n=6, step=17)
    t1 = events[1][0]
    events.insert(2, (t1, "NoButton", "Move", 777, 100))  # same instant, other position
    (seg,), _ = cut(events)
    assert np.all(np.diff(seg.points[:, 0]) > 0)
    row = seg.points[seg.points[:, 0] == t1]
    assert row.tolist() == [[t1, 777, 100]]


def test_equal_timestamp_at_the_press_keeps_the_press():
    events = movement_events(n=4, dx=30)
    t_end, _, _, xe, ye = events[-1]
    events.insert(-1, (t_end, "NoButton", "Move", xe - 3, ye))
    (seg,), _ = cut(events)
    assert seg.points[-1].tolist() == [t_end, xe, ye]


def test_cleaning_on_empty_log():
    stats = SegmentStats()
    assert cut([])[0] == [] and len(clean_log(make_log([]), stats)) == 0


# --------------------------------------------------------------------------- pauses


def paused_events(pause_after: int = 2, pause: float = 2000.0):
    events = movement_events(n=8, dx=40, step=17)
    return events[: pause_after + 1] + [(t + pause, b, s, x, y) for t, b, s, x, y in events[pause_after + 1 :]]


def test_pause_split_keeps_the_part_after_the_last_pause():
    events = paused_events(pause_after=2)
    (seg,), stats = cut(events, pause_ms=1000, pause_policy="split")
    # the movement restarts at the first event after the pause
    assert seg.points[0].tolist() == list(events[3][0:1]) + list(events[3][3:5])
    assert len(seg.points) == len(events) - 3 and seg.duration < 1000
    assert stats.kept == 1


def test_pause_split_uses_the_last_of_several_pauses():
    events = paused_events(pause_after=2)
    events = events[:6] + [(t + 3000, b, s, x, y) for t, b, s, x, y in events[6:]]
    (seg,), _ = cut(events, pause_ms=1000, pause_policy="split")
    assert seg.points[0, 0] == events[6][0] and len(seg.points) == len(events) - 6


def test_pause_drop_discards_and_counts():
    segs, stats = cut(paused_events(), pause_ms=1000, pause_policy="drop")
    assert segs == [] and stats.dropped_segments["long pause (pause_policy=drop)"] == 1


def test_gap_equal_to_pause_ms_is_not_a_pause():
    events = paused_events(pause_after=2, pause=1000 - 17)  # the gap is exactly 1000 ms
    (seg,), _ = cut(events, pause_ms=1000, pause_policy="drop")
    assert len(seg.points) == len(events)


def test_pause_split_can_leave_too_few_points():
    events = paused_events(pause_after=7)  # pause right before the press
    segs, stats = cut(events, pause_ms=1000, pause_policy="split")
    assert segs == [] and stats.dropped_segments["fewer than 3 points"] == 1


# --------------------------------------------------------------------------- distance, duration, points


def test_min_distance_rule():
    short = movement_events(n=4, dx=2)  # 8 px
    assert cut(short, min_distance=10)[1].dropped_segments["shorter than min_distance"] == 1
    assert len(cut(short, min_distance=5)[0]) == 1


def test_max_distance_rule():
    long = movement_events(n=4, dx=500)  # 2000 px
    assert cut(long, max_distance=1500)[1].dropped_segments["longer than max_distance"] == 1
    assert len(cut(long, max_distance=2500)[0]) == 1


def test_max_duration_rule():
    slow = movement_events(n=4, step=500)  # 2.5 s, gaps of 500 ms (no pause)
    segs, stats = cut(slow, max_duration=2000)
    assert segs == [] and stats.dropped_segments["longer than max_duration"] == 1
    assert len(cut(slow, max_duration=2500)[0]) == 1  # exactly at the limit is kept


def test_min_points_rule():
    direct = [(0, "Left", "Released", 0, 0), (100, "Left", "Pressed", 300, 0)]  # no move in between
    segs, stats = cut(direct)
    assert segs == [] and stats.dropped_segments["fewer than 3 points"] == 1
    assert len(cut(direct, min_points=2)[0]) == 1


@pytest.mark.parametrize("kw", [
    dict(pause_policy="maybe"), dict(min_distance=0), dict(min_distance=50, max_distance=40),
    dict(min_points=1), dict(pause_ms=0), dict(max_duration=-1),
])
def test_segment_config_rejects_nonsense(kw):
    with pytest.raises(ValueError):
        SegmentConfig(**kw)


def test_stats_merge_adds_up():
    a, b = cut(movement_events(n=4, dx=1))[1], cut(movement_events(n=4) + movement_events(t0=500))[1]
    total = SegmentStats()
    total.merge(a)
    total.merge(b)
    assert total.events == a.events + b.events and total.candidates == 3 and total.kept == 2
    assert total.dropped_segments["shorter than min_distance"] == 1


def test_segment_properties():
    s = Segment(np.array([[10.0, 0, 0], [20, 3, 1], [40, 3, 4]]), "u", "s", "Left_click")
    assert s.distance == pytest.approx(5.0) and s.duration == 30


# --------------------------------------------------------------------------- a real session


def test_real_sapimouse_session_segments_obey_every_rule(sapimouse_raw):
    path = sorted((sapimouse_raw / "user1").glob("*.csv.gz"))[-1]
    log, _ = read_log(path)
    cfg, stats = SegmentConfig(), SegmentStats()
    segs = segment_log(log, "user1", path.name, cfg, stats)
    assert len(segs) > 20 and stats.kept == len(segs)
    assert stats.candidates == stats.kept + sum(stats.dropped_segments.values())
    for s in segs:
        dt = np.diff(s.points[:, 0])
        assert np.isfinite(s.points).all() and len(s.points) >= cfg.min_points
        assert np.all(dt > 0) and np.all(dt <= cfg.pause_ms)
        assert cfg.min_distance <= s.distance <= cfg.max_distance and s.duration <= cfg.max_duration
