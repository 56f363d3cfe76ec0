"""Bad input never crashes the server: API key, body size, and every error as a one-line ``{"detail": ...}``.

* :class:`Guard` (ASGI middleware) runs before routing and body parsing: without the API key a
  ``/v1/`` request is 401 (nothing of it is read), and a body over ``max_body`` bytes is 413, read
  up to the limit only, so an endless body costs no memory. (FastAPI's own ``max_body_size``
  answers a declared oversized length in plain text; this keeps every error ``{"detail": ...}``.)
* The exception handlers turn pydantic's lists of errors into one line naming the field (400 for
  JSON that does not parse, 422 for a wrong type or value), the library's own ValueErrors into 422
  with their message, a full queue into 503, and anything else into a 500 that says nothing of
  the code: the traceback goes to the server's log, never to a client.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from ..utils.checks import WrongTypeError
from .batching import Overloaded

API_KEY_HEADER = "X-API-Key"
PROTECTED = "/v1/"  # path prefix that needs the key; the page, /healthz and the docs do not
log = logging.getLogger("trajsynth.serve")


def error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": one_line(detail)}, status_code=status, headers=headers)


def one_line(text: Any, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


class Guard:
    """ASGI middleware: the API key on ``/v1/`` paths, then a bounded body (replayed to the app)."""

    def __init__(self, app, api_key: str | None = None, max_body: int = 16384):
        self.app, self.api_key, self.max_body = app, api_key, max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.api_key and scope["path"].startswith(PROTECTED) and not self._key_ok(headers):
            return await error(401, f"missing or wrong API key: send it in the {API_KEY_HEADER} header",
                               {"WWW-Authenticate": API_KEY_HEADER})(scope, receive, send)
        body = await self._body(headers, receive)
        if body is None:
            return await error(413, f"request body over {self.max_body} bytes")(scope, receive, send)
        return await self.app(scope, _replay(body, receive), send)

    def _key_ok(self, headers: dict[str, str]) -> bool:
        given = headers.get(API_KEY_HEADER.lower(), "").encode("latin-1")  # the header's bytes, as sent
        return secrets.compare_digest(given, self.api_key.encode())

    async def _body(self, headers: dict[str, str], receive) -> bytes | None:
        """The whole body, or None as soon as it is over the limit (declared or read)."""
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            return None
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return None
            more = message.get("more_body", False)
        return b"".join(chunks)


def _replay(body: bytes, receive):
    """A receive callable that hands the app the body already read, then waits on the real one."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Overloaded, lambda r, e: error(503, str(e), {"Retry-After": "1"}))
    app.add_exception_handler(ValueError, lambda r, e: error(422, str(e)))
    app.add_exception_handler(WrongTypeError, lambda r, e: error(422, str(e)))
    app.add_exception_handler(Exception, _internal_error)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        why = (first.get("ctx") or {}).get("error", "not JSON")
        return error(400, f"malformed JSON: {why}")
    if tuple(first.get("loc", ())) == ("body",) and "json" not in request.headers.get("content-type", ""):
        return error(415, "send the body as JSON, with the header Content-Type: application/json")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return error(422, f"{_where(first.get('loc', ()))}: {first.get('msg', 'invalid')}{more}")


def _where(loc) -> str:
    """('body', 'start', 0) → 'start[0]'; the body itself → 'body'."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "body"


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return error(exc.status_code, exc.detail, getattr(exc, "headers", None))


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("error answering %s %s", request.method, request.url.path, exc_info=exc)
    return error(500, "internal error (the server's log has the details)")
