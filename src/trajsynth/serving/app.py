"""The HTTP service: ``create_app(sampler, ...)`` → a FastAPI app (the ``serve`` extra) over one model.

Versioned API under ``/v1`` (OpenAPI at ``/openapi.json``, Swagger UI at ``/docs``, both served
from the package: no CDN), ``/healthz``, and the page at ``/`` (static files shipped with the
package). Every model call goes through one :class:`MicroBatcher`; see ``batching.py`` for why,
``workers.py`` for model worker processes, and ``guards.py`` for how bad input is answered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from .. import __version__
from .batching import MicroBatcher
from .continuous import ContinuousBatcher
from .guards import API_KEY_HEADER, Guard, error, install_error_handlers
from .jobs import PathJob, SampleJob, movement_json, run_jobs
from .provenance import model_card
from .references import RealMovements
from .sampler import TrajectorySampler
from .schemas import Health, ModelCard, Movement, Movements, PathRequest, RealMovement, SampleRequest
from .workers import pool_factory, run_in_worker

STATIC = Path(__file__).parent / "static"
BATCHING = ("continuous", "micro")


@dataclass
class Settings:
    """How the service batches and what it accepts."""

    api_key: str | None = None
    max_batch: int = 64  # path requests per model call (continuous batching: movements drawn at once)
    max_wait_ms: float = 2.0  # how long a small batch waits for company
    max_queue: int = 1024  # requests waiting for the model; more are answered 503
    max_body: int = 16384  # bytes of a request body
    # Model worker processes: 0, a thread of this process; None, one if continuous batching applies, else 0
    # (the command's default; spawned workers re-import a script's __main__, which must then be guarded).
    workers: int | None = 0
    batching: str = "continuous"  # unseeded /v1/path of a step-by-step family (ar_mdn); or "micro"


@dataclass
class Service:
    sampler: TrajectorySampler
    card: dict[str, Any]
    batcher: MicroBatcher
    real: RealMovements | None = None
    settings: Settings = field(default_factory=Settings)
    stream: ContinuousBatcher | None = None  # unseeded path requests, when continuous batching applies

    async def path(self, job: PathJob) -> dict:
        if self.stream is not None and job.seed is None:
            return await self.stream.submit(job)
        return await self.batcher.submit(job, job.key)


def create_app(sampler: TrajectorySampler, ckpt: dict[str, Any], settings: Settings | None = None,
               real: RealMovements | None = None, checkpoint: str | Path | None = None) -> FastAPI:
    """The service for a loaded sampler and its checkpoint dict (for /v1/model); ``real`` for /v1/real.

    With ``settings.workers`` > 0, model calls run in that many worker processes, each loading the
    ``checkpoint`` file (needed then); ``sampler`` still validates requests and describes the model.
    """
    settings = settings or Settings()
    if settings.batching not in BATCHING:
        raise ValueError(f"batching must be one of {', '.join(BATCHING)}, got {settings.batching!r}")
    continuous = settings.batching == "continuous" and sampler.continuous  # unseeded paths; the batcher: the rest
    if settings.workers is None:  # stepping is Python-bound: in a process of its own it has a core and a GIL
        settings = dataclasses.replace(settings, workers=1 if continuous and checkpoint is not None else 0)
    stream = None
    if continuous:
        stream = ContinuousBatcher(sampler, settings.max_batch, settings.max_queue, checkpoint, settings.workers)
    # The workers then step: seeded paths and samples (the few) run in this process.
    batcher = _batcher(sampler, settings if stream is None else dataclasses.replace(settings, workers=0), checkpoint)
    service = Service(sampler, model_card(ckpt, sampler, real is not None), batcher, real, settings, stream)
    app = FastAPIOffline(title="trajsynth", version=__version__, lifespan=partial(_lifespan, service),
                         description="Human-like mouse movements from a trained trajsynth model.",
                         redoc_url=None, static_url="/docs-assets")
    app.state.service = service
    install_error_handlers(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Guard, api_key=settings.api_key, max_body=settings.max_body)
    return app


def _batcher(sampler: TrajectorySampler, settings: Settings, checkpoint: str | Path | None) -> MicroBatcher:
    common = (settings.max_batch, settings.max_wait_ms / 1000, settings.max_queue)
    if settings.workers == 0:
        return MicroBatcher(partial(run_jobs, sampler), *common)
    if checkpoint is None:
        raise ValueError("model worker processes load the checkpoint file: pass checkpoint= with workers > 0")
    render = sampler.render  # the workers draw exactly what this sampler would
    return MicroBatcher(run_in_worker, *common, executor=pool_factory(checkpoint, settings.workers, render),
                        concurrency=settings.workers)


@asynccontextmanager
async def _lifespan(service: Service, app: FastAPI):
    await service.batcher.start()
    if service.stream is not None:
        await service.stream.start()
    job = PathJob(*service.sampler.warm_up_pair)
    warm = [service.batcher.submit(job) for _ in range(service.batcher.concurrency)]
    if service.stream is not None:
        warm.append(service.stream.submit(job))
    await asyncio.gather(*warm)  # first-call allocations here; worker processes all started and loaded
    # The modules, the model and the app are never garbage: out of the collector's sight, a full
    # collection scans only what requests create (measured: 75-160 ms pauses -> a few ms; the p99).
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        if service.stream is not None:
            await service.stream.stop()
        await service.batcher.stop()


async def _service(request: Request) -> Service:  # async: a plain def would run in a thread pool per request
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(_service)]


# Declares the header in the OpenAPI schema (the Authorize button of /docs); Guard enforces it.
_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                    description="needed when the server was started with --api-key or TRAJSYNTH_API_KEY")
_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"description": d} for s, d in ((400, "malformed JSON"), (401, "missing or wrong API key"),
                                       (413, "body too large"), (415, "body not sent as JSON"),
                                       (422, "wrong type or value (one-line reason)"), (503, "queue full: try again"))}
router = APIRouter()
api = APIRouter(prefix="/v1", dependencies=[Depends(_key)], responses=_ERRORS)


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@api.get("/model", response_model=ModelCard)
async def model(svc: ServiceDep) -> dict[str, Any]:
    """Family, versions, the distance range it was trained on, and where its data came from."""
    return svc.card


@api.post("/path", response_model=Movement)
async def path(req: PathRequest, svc: ServiceDep) -> JSONResponse:
    """A movement from ``start`` that ends exactly at ``end``: times (ms from its start) and positions (px)."""
    svc.sampler.checked_pair(req.start, req.end)  # a bad pair fails here, never inside a shared batch
    return JSONResponse(await svc.path(PathJob(tuple(req.start), tuple(req.end), req.seed)))


@api.post("/sample", response_model=Movements)
async def sample(req: SampleRequest, svc: ServiceDep) -> JSONResponse:
    """``n`` movements starting at (0, 0), for a distance (or distances drawn like the training data) and a
    direction (or the model's own)."""
    job = SampleJob(req.n, req.distance_px, req.direction, req.seed)
    return JSONResponse(await svc.batcher.submit(job, job.key))


@api.post("/real", response_model=RealMovement, responses={404: {"description": "started without --data-dir"}})
async def real(req: PathRequest, svc: ServiceDep) -> JSONResponse:
    """A recorded movement of about the distance from ``start`` to ``end``, turned toward ``end`` (not scaled)."""
    if svc.real is None:
        return error(404, "no real movements here: the server was started without --data-dir")
    p, i = svc.real.between(req.start, req.end, req.seed)  # a search and a rotation: no model call
    return JSONResponse({**movement_json(p), "distance_px": round(float(svc.real.distance[i]), 3),
                         "user": svc.real.users[i]})


router.include_router(api)
