"""Helpers shared by the property-based (fuzz) tests: the case counter and the error contract."""

from __future__ import annotations

import os
from collections import Counter

import pytest

# test node id → fuzz cases run; conftest prints the total at the end of the session.
FUZZ_COUNTS: Counter = Counter()


def count_case() -> None:
    """Count one case of the running property (call it first thing in the test body)."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "unknown").rsplit(" ", 1)[0]
    FUZZ_COUNTS[test] += 1


def assert_clean_error(err: BaseException, allowed: tuple[type[BaseException], ...] = (ValueError,),
                       first_line: bool = False) -> str:
    """``err`` is one of ``allowed`` with a non-empty one-line message; returns the message.

    ``first_line``: only the first line is checked (for errors of code being reworked elsewhere).
    """
    if not isinstance(err, allowed):
        raise AssertionError(f"unexpected {type(err).__name__}: {err}") from err
    msg = str(err).strip()
    if first_line:
        msg = msg.splitlines()[0] if msg else msg
    if not msg or "\n" in msg or "Traceback" in msg:
        pytest.fail(f"{type(err).__name__} message is not one clean line: {msg!r}")
    return msg


def raised_in_package(err: BaseException, package: str = "trajsynth") -> bool:
    """Was ``err`` raised by the project's own code (its innermost frame in ``package``)?"""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    parts = os.path.normpath(tb.tb_frame.f_code.co_filename).split(os.sep)
    return package in parts


def fewer(k: int):
    """Settings with 1/k of the profile's cases, for properties that cost more per case."""
    from hypothesis import settings

    return settings(max_examples=max(10, settings.default.max_examples // k))
