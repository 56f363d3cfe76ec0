"""Atomic writes: content appears whole under the final name, with the usual file permissions."""

from __future__ import annotations

import os

from trajsynth.utils.atomic import write_text


def test_atomic_write_has_umask_permissions_and_leaves_no_temp(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    write_text(tmp_path / "a.txt", "hello")
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
