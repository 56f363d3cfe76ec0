"""Checks of public-API arguments: ``TypeError`` for a wrong type, ``ValueError`` for a wrong value.

Each message names the argument and what was given, in the project's words, so a caller never
has to decode a numpy broadcasting or seeding error.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


class WrongTypeError(TypeError):
    """An argument of the wrong type (a string where a number belongs, a float count, ...)."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_count(name: str, value: Any, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bool is not a count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise WrongTypeError(f"{name} must be an integer, got {_shown(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_seed(name: str, value: Any) -> int | None:
    """None (fresh randomness) or a non-negative integer."""
    return None if value is None else check_count(name, value, minimum=0)


def _real_array(name: str, value: Any, what: str) -> np.ndarray:
    if not isinstance(value, (str, bytes)):
        try:
            arr = np.asarray(value)
        except ValueError:  # ragged nesting
            arr = np.asarray(None)
        if arr.dtype.kind in "iuf":
            return arr.astype(np.float64)
    raise WrongTypeError(f"{name} must be {what}, got {_shown(value)}")


def _finite(name: str, arr: np.ndarray, value: Any) -> np.ndarray:
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {_shown(value)}")
    return arr


def check_numbers(name: str, value: Any) -> np.ndarray:
    """A real number or an array of them, all finite, as float64."""
    return _finite(name, _real_array(name, value, "a number or an array of numbers"), value)


def check_point(name: str, value: Any) -> np.ndarray:
    """Two finite numbers (x, y) as a float64 array of shape (2,)."""
    what = "two numbers (x, y)"
    arr = _real_array(name, value, what)
    if arr.shape != (2,):
        raise ValueError(f"{name} must be {what}, got {_shown(value)}")
    return _finite(name, arr, value)
