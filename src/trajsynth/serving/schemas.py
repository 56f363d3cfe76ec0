"""The HTTP API's request and response bodies: pydantic does every type and range check.

Strict mode: a number given as text, a count given as 2.5 or ``true`` is a wrong type, not
something to coerce. JSON's ``NaN`` / ``Infinity`` (which Python's parser accepts) and numbers too
large for a float are refused by ``allow_inf_nan=False``; unknown fields are refused too, so a
misspelt ``sed`` is an error instead of silently unseeded. What depends on the model (a distance
outside its trained range) is checked by the sampler.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

COORD_LIMIT = 100_000.0  # px: a wall of screens; beyond it a coordinate is a mistake, not a screen
MAX_SAMPLES = 1000  # movements of one /v1/sample request
MAX_SEED = 2**63 - 1

Coord = Annotated[float, Field(ge=-COORD_LIMIT, le=COORD_LIMIT, description="px, screen coordinates (y down)")]
Point = Annotated[list[Coord], Field(min_length=2, max_length=2, description="[x, y] in px")]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="same seed, same movement (a seeded request runs "
                                                           "alone, not in a shared batch)")]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class PathRequest(_Body):
    start: Point
    end: Point
    seed: Seed | None = None


class SampleRequest(_Body):
    n: Annotated[int, Field(ge=1, le=MAX_SAMPLES, description=f"how many movements (1–{MAX_SAMPLES})")]
    distance_px: Annotated[float, Field(gt=0, le=COORD_LIMIT, description="start-to-end distance in px "
                                                                          "(default: drawn like the training data)")
                           ] | None = None
    direction: Annotated[float, Field(ge=-360, le=360, description="degrees from +x toward +y (screen: 90 is down); "
                                                                   "default: as the model draws it")] | None = None
    seed: Seed | None = None


class Movement(BaseModel):
    """One movement: times from its start (ms) and positions (px), point by point."""

    t_ms: list[float]
    x: list[float]
    y: list[float]


class Movements(BaseModel):
    movements: list[Movement]


class RealMovement(Movement):
    distance_px: float = Field(description="the real movement's own start-to-end distance")
    user: str


class ModelCard(BaseModel):
    family: str
    family_version: int
    trajsynth_version: str
    directed: bool = Field(description="generates for an end point's direction, not only its distance")
    distance_range_px: list[float] = Field(description="[min, max] start-to-end distance it was trained on")
    data: dict = Field(description="where its training data came from, as far as the checkpoint and the data "
                                   "directory's meta.json tell")
    real_movements: bool = Field(description="whether /v1/real can answer (the server was given --data-dir)")
    max_samples: int = MAX_SAMPLES


class Health(BaseModel):
    status: str
