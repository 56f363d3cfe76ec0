"""Throughput and robustness of ``trajsynth serve``, measured from outside the server, in one JSON object.

Starts ``trajsynth serve CKPT`` (a subprocess, loopback, a free port, an API key), then:

* **load**: ``--clients`` concurrent clients (asyncio streams, one keep-alive connection each) post
  ``/v1/path`` between random points at distances the model was trained on for ``--seconds``:
  ``requests_s``, ``p50_ms`` / ``p99_ms`` latency as the clients see it, ``errors`` (any answer
  but 200, or no answer);
* **malformed**: ``--malformed`` bad requests, the same number of each of ten kinds (malformed
  JSON, wrong type, NaN, infinity, a coordinate out of range, a distance outside the trained range,
  n = 0, n over the cap, an oversized body, no API key): how many got a 4xx, by status, and
  whether the server still answers a good request afterwards;
* ``rss_mb``: the server process's resident memory after start-up, after the load, after the
  malformed requests (Linux), and the CPU seconds the server and the clients used during the load.

The clients share the machine with the server (``cpu_s`` says how much each took), so the
server's own capacity is higher than ``requests_s``. Run it on an idle machine.

    python benchmarks/bench_serve.py CKPT --json [--seconds 30] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

KEY = "bench-key"
HEADERS = {"X-API-Key": KEY}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(checkpoint: str, port: int, timeout_s: float = 120.0, workers: int | None = None):
    """``trajsynth serve`` in a subprocess until it answers /healthz; its Popen, stopped on exit."""
    log = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "trajsynth", "serve", checkpoint, "--port", str(port), "--api-key", KEY,
           *([] if workers is None else ["--workers", str(workers)])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    try:
        _wait_healthy(proc, port, timeout_s, log)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_healthy(proc: subprocess.Popen, port: int, timeout_s: float, log) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            last = (log.read().decode(errors="replace").strip().splitlines() or ["(no output)"])[-1]
            raise SystemExit(f"error: the server exited with status {proc.returncode}: {last}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"error: the server did not answer /healthz within {timeout_s:g} s")


def family_of(pid: int) -> list[int]:
    """The process and all its descendants (the server's model workers), from Linux /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                pass
    return out


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process and its descendants in MiB (Linux /proc), None elsewhere."""
    total = None
    for p in family_of(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total = (total or 0.0) + int(line.split()[1]) / 1024
        except OSError:
            pass
    return None if total is None else round(total, 1)


def cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process and its live descendants have used (Linux /proc), None elsewhere."""
    total = None
    for p in family_of(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total = (total or 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def path_bodies(distance_range: tuple[float, float], n: int = 1000, seed: int = 0) -> list[bytes]:
    """Request bodies between random points at distances the model was trained on."""
    rng = np.random.default_rng(seed)
    lo, hi = distance_range
    dist = np.exp(rng.uniform(np.log(max(lo, 1.0)), np.log(hi), n))
    angle = rng.uniform(-np.pi, np.pi, n)
    starts = rng.uniform(0, 1000, (n, 2))
    ends = starts + dist[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    return [json.dumps({"start": s.round(2).tolist(), "end": e.round(2).tolist()}).encode()
            for s, e in zip(starts, ends, strict=True)]


class Connection:
    """One keep-alive HTTP/1.1 connection posting JSON: a few lines of asyncio streams instead of a client
    library, so that the load clients take as little as possible of the cores they share with the server."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        """The answer's status code (its body is read and dropped)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"X-API-Key: {KEY}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", answer)
        await self.reader.readexactly(int(length.group(1)) if length else 0)
        return int(answer.split(b" ", 2)[1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _client(port: int, bodies: list[bytes], stop_at: float, k: int, latencies: list[float],
                  errors: list[int]) -> None:
    conn, i = Connection("127.0.0.1", port), k
    while time.perf_counter() < stop_at:
        t0 = time.perf_counter()
        try:
            ok = await conn.post("/v1/path", bodies[i % len(bodies)]) == 200
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            ok = False
            conn.close()  # a new connection for the next request
        latencies.append(time.perf_counter() - t0)
        errors.append(0 if ok else 1)
        i += 7
    conn.close()


async def load(port: int, bodies: list[bytes], seconds: float, clients: int) -> dict:
    latencies: list[float] = []
    errors: list[int] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(port, bodies, t0 + seconds, k, latencies, errors) for k in range(clients)))
    wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"requests": len(lat), "requests_s": round(len(lat) / wall, 1),
            "p50_ms": round(float(np.median(lat)), 2), "p99_ms": round(float(np.quantile(lat, 0.99)), 2),
            "errors": int(sum(errors))}


def malformed_kinds(hi: float) -> list[tuple[str, str, dict, bytes]]:
    """Ten kinds of bad request: (name, endpoint, headers, body)."""
    js = {**HEADERS, "Content-Type": "application/json"}
    path = lambda body: json.dumps(body).encode()  # noqa: E731
    return [
        ("malformed_json", "/v1/path", js, b'{"start": [1, 2], "end": [300'),
        ("wrong_type", "/v1/path", js, path({"start": "here", "end": [300, 2]})),
        ("nan", "/v1/path", js, b'{"start": [NaN, 2], "end": [300, 2]}'),
        ("infinite", "/v1/path", js, b'{"start": [1, 2], "end": [1e999, 2]}'),
        ("coordinate_out_of_range", "/v1/path", js, path({"start": [1e9, 2], "end": [1e9 + 300, 2]})),
        ("distance_out_of_range", "/v1/path", js, path({"start": [0, 0], "end": [2 * hi + 1, 0]})),
        ("n_zero", "/v1/sample", js, path({"n": 0})),
        ("n_over_cap", "/v1/sample", js, path({"n": 100_000})),
        ("oversized_body", "/v1/path", js, b'{"pad": "' + b"x" * 1_000_000 + b'"}'),
        ("no_api_key", "/v1/path", {"Content-Type": "application/json"}, path({"start": [0, 0], "end": [300, 0]})),
    ]


async def malformed(base: str, total: int, hi: float, clients: int) -> dict:
    kinds = malformed_kinds(hi)
    jobs = [kinds[i % len(kinds)] for i in range(total)]
    statuses: dict[str, dict[str, int]] = {name: {} for name, *_ in kinds}
    sem = asyncio.Semaphore(clients)

    async def one(client: httpx.AsyncClient, name: str, url: str, headers: dict, body: bytes) -> None:
        async with sem:
            try:
                status = str((await client.post(url, content=body, headers=headers)).status_code)
            except httpx.HTTPError as e:
                status = type(e).__name__
            statuses[name][status] = statuses[name].get(status, 0) + 1

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await asyncio.gather(*(one(client, *job) for job in jobs))
    n4xx = sum(n for by in statuses.values() for s, n in by.items() if s.isdigit() and 400 <= int(s) < 500)
    return {"sent": total, "answered_4xx": n4xx, "by_kind": statuses}


def still_answering(base: str, body: bytes) -> bool:
    try:
        r = httpx.post(f"{base}/v1/path", content=body, headers={**HEADERS, "Content-Type": "application/json"},
                       timeout=10)
        return r.status_code == 200 and httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="a finished model of any family")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the load phase (default: 30)")
    ap.add_argument("--clients", type=int, default=32, help="concurrent clients (default: 32)")
    ap.add_argument("--malformed", type=int, default=1000, help="bad requests sent after the load (default: 1000)")
    ap.add_argument("--workers", type=int, default=None,
                    help="the server's --workers (model processes; default: the server's own default)")
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    a = ap.parse_args()
    if not Path(a.checkpoint).is_file():
        raise SystemExit(f"error: checkpoint {a.checkpoint} is not a file")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with server(a.checkpoint, port, workers=a.workers) as proc:
        card = httpx.get(f"{base}/v1/model", headers=HEADERS, timeout=10).json()
        bodies = path_bodies(tuple(card["distance_range_px"]))
        rss = {"start": rss_mb(proc.pid)}
        cpu = (cpu_s(proc.pid), time.process_time())
        result = {"family": card["family"], "clients": a.clients, "seconds": a.seconds,
                  **asyncio.run(load(port, bodies, a.seconds, a.clients))}
        if cpu[0] is not None:  # who used the cores during the load: the server, or the clients
            result["cpu_s"] = {"server": round(cpu_s(proc.pid) - cpu[0], 2),
                               "clients": round(time.process_time() - cpu[1], 2)}
        rss["after_load"] = rss_mb(proc.pid)
        result["malformed"] = asyncio.run(malformed(base, a.malformed, card["distance_range_px"][1], a.clients))
        result["malformed"]["still_answering"] = still_answering(base, bodies[0])
        rss["after_malformed"] = rss_mb(proc.pid)
        result["rss_mb"] = rss
        result["workers"] = a.workers
        result["server_threads"] = os.environ.get("TRAJSYNTH_THREADS") or os.environ.get("OMP_NUM_THREADS") or "1"
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
