"""What every metric declares: its name, direction, ideal value and quality bands.

A metric function returns plain numbers; this module says how to read them. The
report (``evaluation.report``) looks each key up here to print its band, so a key
that is not registered is reported without one rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.sets import check_sequences as check_sequences  # re-exported: metrics validate with it


@dataclass(frozen=True)
class MetricInfo:
    name: str
    direction: str  # "lower" or "higher": which way is better
    ideal: float
    description: str
    # Upper edges of Excellent / Good / Needs work for "lower" metrics (lower edges for
    # "higher" ones); beyond the last edge the value is Poor. None: no agreed bands.
    bands: tuple[float, float, float] | None = None

    def band(self, value: float) -> str | None:
        """Excellent / Good / Needs work / Poor, or None without bands or for a non-finite value."""
        if self.bands is None or value is None or not np.isfinite(value):
            return None
        names = ("Excellent", "Good", "Needs work")
        for name, edge in zip(names, self.bands, strict=True):
            if (value < edge) if self.direction == "lower" else (value > edge):
                return name
        return "Poor"


REGISTRY: dict[str, MetricInfo] = {}


def register(info: MetricInfo) -> MetricInfo:
    if info.direction not in ("lower", "higher"):
        raise ValueError(f"{info.name}: direction must be 'lower' or 'higher', got {info.direction!r}")
    if info.name in REGISTRY and REGISTRY[info.name] != info:
        raise ValueError(f"metric {info.name!r} is registered twice with different definitions")
    REGISTRY[info.name] = info
    return info


@dataclass
class Repeated:
    """A score repeated over k seeds: mean ± std and every value."""

    values: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values))

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f}"
