"""``trajsynth serve``: one model over HTTP (JSON API, its docs, and a page to try it), the ``serve`` extra."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys

from ..data.embedded import EMBEDDED, resolve_data_dir
from ..serving.server import API_KEY_ENV, build_app, listen, missing_extra, serve, url
from .errors import CliError
from .options import add_command, add_count

DESCRIPTION = f"""\
Serve a finished model over HTTP (FastAPI on uvicorn; needs pip install 'trajsynth[serve]').

  POST /v1/path    {{"start": [x, y], "end": [x, y], "seed"?: int}} -> {{"t_ms": [...], "x": [...], "y": [...]}}
  POST /v1/sample  {{"n": 1-1000, "distance_px"?, "direction"? (degrees, 90 = down), "seed"?}} -> {{"movements": [...]}}
  POST /v1/real    like /v1/path: a real movement of similar distance (needs --data-dir)
  GET  /v1/model   family, versions, trained distance range, data provenance
  GET  /healthz    GET /docs (the API's documentation)    GET / (a page to draw and replay movements)

Concurrent requests share model calls: path requests of a family that draws step by step (ar_mdn)
join the running roll-out between steps and leave as soon as drawn (continuous batching); other
requests are grouped into one call (micro-batching). When --max-queue requests wait, more are
answered 503. Bad input gets a 4xx with a one-line reason. It listens on loopback (this
machine only) unless --host says otherwise; with --api-key (or ${API_KEY_ENV}) every /v1
request must send the key in its X-API-Key header."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "serve", raw=True, help="serve a model over HTTP: JSON API, docs and a page (serve extra)",
                    description=DESCRIPTION)
    p.add_argument("checkpoint", help="a finished model of any family (a run's final.pt)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    add_count(p, "--port", default=8000, minimum=0, help="TCP port (0: any free port)")
    p.add_argument("--api-key", default=None, help=f"key every /v1 request must send in X-API-Key (default: "
                                                   f"${API_KEY_ENV} if set, else none)")
    p.add_argument("--data-dir", help=f"data directory (or '{EMBEDDED}') whose real movements /v1/real and the "
                                      "page show beside generated ones")
    add_count(p, "--max-batch", default=64, help="path requests per model call (continuous: movements drawn at once)")
    p.add_argument("--max-wait-ms", type=float, default=2.0, help="how long a small batch waits for more requests")
    add_count(p, "--max-queue", default=1024, help="requests waiting for the model before more get 503")
    p.add_argument("--batching", choices=("continuous", "micro"), default="continuous",
                   help="continuous: path requests join the running roll-out between steps and leave when drawn "
                        "(families that draw step by step, ar_mdn); micro: concurrent requests "
                        "share one call (default: continuous where it applies)")
    add_count(p, "--workers", default=None, minimum=0,
              help="model worker processes, each with its own copy of the model (0: the model runs in a thread of "
                   "the server process; default: 1 with continuous batching, else 0)")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(func=cmd_serve)


def cmd_serve(a: argparse.Namespace) -> int:
    if (why := missing_extra()) is not None:
        raise CliError(why)
    if a.port > 65535:
        raise CliError(f"--port must be at most 65535, got {a.port}")
    if not 0 <= a.max_wait_ms <= 1000:
        raise CliError(f"--max-wait-ms must lie in [0, 1000], got {a.max_wait_ms:g}")
    data_dir = resolve_data_dir(a.data_dir) if a.data_dir else None
    app = build_app(a.checkpoint, a.api_key, data_dir, max_batch=a.max_batch, max_wait_ms=a.max_wait_ms,
                    max_queue=a.max_queue, workers=a.workers,
                    batching=a.batching)
    try:
        sock = listen(a.host, a.port)
    except OSError as e:
        raise CliError(f"cannot listen on {a.host}:{a.port}: {e.strerror or e}") from None
    key = app.state.service.settings.api_key
    if key is None and not _loopback(a.host):
        print(f"warning: listening on {a.host} without an API key: anyone who can reach it can use it",
              file=sys.stderr)
    print(f"serving {a.checkpoint} on {url(sock)} (page /, API docs /docs{', API key required' if key else ''}); "
          "Ctrl-C stops", file=sys.stderr)
    serve(app, sock, access_log=a.access_log, log_level="info" if a.access_log else "warning")
    return 0


def _loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False
