"""Running the service on uvicorn: in the foreground (``trajsynth serve``) or in a background thread (tests).

FastAPI and uvicorn are the optional ``serve`` extra: they are imported here and in ``app.py``
only, so ``import trajsynth`` and every other command work without them, and a missing extra is
one line saying what to install.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..models.checkpoint import load_checkpoint
from ..utils.threads import inference_threads
from .references import RealMovements
from .sampler import TrajectorySampler

API_KEY_ENV = "TRAJSYNTH_API_KEY"
EXTRA_MODULES = ("fastapi", "uvicorn", "fastapi_offline")


def missing_extra() -> str | None:
    """None when the ``serve`` extra is installed, else what to do about it."""
    missing = [m for m in EXTRA_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        return f"serving needs {', '.join(missing)}: pip install 'trajsynth[serve]'"
    return None


def build_app(checkpoint: str | Path, api_key: str | None = None, data_dir: str | Path | None = None, **settings):
    """The app for a checkpoint file (``api_key`` None: $TRAJSYNTH_API_KEY, if set), ``data_dir`` for /v1/real."""
    if (why := missing_extra()) is not None:
        raise ModuleNotFoundError(why)
    from .app import Settings, create_app

    ckpt = load_checkpoint(checkpoint)
    # requests run side by side: even a large one keeps one thread (the policy's count for small calls)
    sampler = TrajectorySampler.from_loaded(ckpt, checkpoint, threads=inference_threads())
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    real = RealMovements(data_dir) if data_dir is not None else None
    return create_app(sampler, ckpt, Settings(api_key=key, **settings), real, checkpoint)


def _config(app, host: str, port: int, **kw: Any):
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level=kw.pop("log_level", "warning"),
                          access_log=kw.pop("access_log", False), **kw)


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (0: a free port); OSError says why it cannot be (in use, no such host)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(app, sock: socket.socket, **kw: Any) -> None:
    """Serve on a bound socket in the foreground until interrupted (Ctrl-C: a graceful stop)."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    uvicorn.Server(_config(app, host, port, **kw)).run(sockets=[sock])


@contextmanager
def running(app, host: str = "127.0.0.1", timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``app`` on a free port of ``host`` in a background thread; yields its base URL, stops on exit.

    For tests of one's own pages: ``with running(build_app(ckpt)) as url: ...``.
    """
    import uvicorn

    sock = listen(host, 0)  # the port is ours from here on: no race with another process picking it
    server = uvicorn.Server(_config(app, host, sock.getsockname()[1]))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="trajsynth-serve")
    thread.start()
    try:
        _wait_started(server, thread, timeout_s)
        yield url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()


def _wait_started(server, thread: threading.Thread, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start (see the log above)")
        time.sleep(0.01)
