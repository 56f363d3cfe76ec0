"""The HTTP API in process (FastAPI's TestClient): every endpoint, every kind of bad input, the API key, batching.

Two tiny models: ``procedural`` (distance-only: paths are rotated onto the end point) fitted on the
embedded data, and ``ar_mdn`` (directed: generated for the end point) trained for a few steps on
synthetic movements. Each takes seconds.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra (pip install 'trajsynth[serve]') is not installed")
import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

import trajsynth  # noqa: E402
from trajsynth.cli.main import main  # noqa: E402
from trajsynth.data.embedded import embedded_data_dir  # noqa: E402
from trajsynth.serving.batching import MicroBatcher, Overloaded  # noqa: E402
from trajsynth.serving.server import API_KEY_ENV, build_app  # noqa: E402


@pytest.fixture(scope="module")
def client(procedural_ckpt):
    with TestClient(build_app(procedural_ckpt, data_dir=embedded_data_dir())) as c:
        yield c


@pytest.fixture(scope="module")
def directed_client(ar_mdn_ckpt):
    with TestClient(build_app(ar_mdn_ckpt)) as c:
        yield c


def post(client, url: str, body, headers: dict | None = None):
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, content=content, headers={"Content-Type": "application/json", **(headers or {})})


def assert_movement(m: dict, start, end) -> None:
    t, x, y = np.array(m["t_ms"]), np.array(m["x"]), np.array(m["y"])
    assert len(t) == len(x) == len(y) >= 2 and t[0] == 0 and np.all(np.diff(t) >= 0)
    assert np.allclose([x[0], y[0]], start, atol=1e-3) and [x[-1], y[-1]] == list(end)


# ----- endpoints -------------------------------------------------------------------------------------------
def test_healthz_and_model_card(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    card = client.get("/v1/model").json()
    assert card["family"] == "procedural" and card["family_version"] >= 1 and card["directed"] is False
    assert card["trajsynth_version"] == trajsynth.__version__ and card["distance_range_px"] == [10.0, 3000.0]
    assert card["real_movements"] is True and card["max_samples"] == 1000
    data = card["data"]
    assert data["data_dir"].startswith("embedded-") and data["meta_available"] is True
    assert data["source"] == "embedded SapiMouse sample" and "SapiMouse" in data["citation"]
    assert data["counts"]["train"] > 0 and "/" not in data["data_dir"]  # a name, never the server's path


@pytest.mark.parametrize("which", ["client", "directed_client"])
def test_path_starts_and_ends_where_asked(which, request):
    c = request.getfixturevalue(which)
    for start, end in (([0, 0], [400, 0]), ([500.5, 500], [100, 200.25]), ([-3, 7], [-90, 60])):
        r = post(c, "/v1/path", {"start": start, "end": end})
        assert r.status_code == 200, r.text
        assert_movement(r.json(), start, end)


def test_a_seeded_path_is_reproducible_and_is_the_library_path(client, procedural_ckpt):
    body = {"start": [10, 20], "end": [610, 320], "seed": 7}
    a, b = post(client, "/v1/path", body).json(), post(client, "/v1/path", body).json()
    assert a == b and a != post(client, "/v1/path", {**body, "seed": 8}).json()
    p = trajsynth.load(procedural_ckpt).path((10, 20), (610, 320), seed=7)
    assert np.allclose(np.column_stack([a["t_ms"], a["x"], a["y"]]), p, atol=1e-3)


@pytest.mark.parametrize("which", ["client", "directed_client"])
def test_sample_n_movements_for_a_distance_and_direction(which, request):
    c = request.getfixturevalue(which)
    r = post(c, "/v1/sample", {"n": 5, "distance_px": 300, "direction": 90, "seed": 1})
    assert r.status_code == 200, r.text
    ms = r.json()["movements"]
    assert len(ms) == 5 and ms == post(c, "/v1/sample", {"n": 5, "distance_px": 300, "direction": 90,
                                                         "seed": 1}).json()["movements"]
    for m in ms:  # straight down the screen: y grows downwards
        assert_movement(m, [0, 0], [0.0, 300.0])
    free = post(c, "/v1/sample", {"n": 3}).json()["movements"]
    assert len(free) == 3 and all(m["t_ms"][0] == 0 and m["x"][0] == 0 for m in free)


def test_sample_up_to_the_cap(client):
    r = post(client, "/v1/sample", {"n": 1000, "distance_px": 200})
    assert r.status_code == 200 and len(r.json()["movements"]) == 1000
    ends = [np.hypot(m["x"][-1], m["y"][-1]) for m in r.json()["movements"]]
    assert np.allclose(ends, 200, atol=1.0)


def test_real_movement_of_similar_distance_turned_toward_the_end(client):
    r = post(client, "/v1/real", {"start": [100, 100], "end": [100, 500], "seed": 0})
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["user"].startswith("user") and 250 < m["distance_px"] < 600
    x, y = np.array(m["x"]) - 100, np.array(m["y"]) - 100
    assert np.allclose([x[0], y[0]], 0, atol=1e-3) and np.isclose(np.hypot(x[-1], y[-1]), m["distance_px"], atol=0.01)
    assert abs(x[-1]) < 0.01 * m["distance_px"] and y[-1] > 0  # rotated onto the direction, not scaled


def test_real_movement_needs_a_data_dir(directed_client):
    r = post(directed_client, "/v1/real", {"start": [0, 0], "end": [100, 0]})
    assert r.status_code == 404 and "--data-dir" in r.json()["detail"]
    assert directed_client.get("/v1/model").json()["real_movements"] is False


def test_docs_page_and_static_files_are_served_locally(client):
    docs = client.get("/docs")
    assert docs.status_code == 200 and "docs-assets/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/path", "/v1/sample", "/v1/model", "/v1/real", "/healthz"} <= set(spec["paths"])
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere
    for name in ("page.js", "page.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and "https://" not in asset.text


# ----- bad input ---------------------------------------------------------------------------------------------
JSON = {"Content-Type": "application/json"}
BAD = [  # (id, method, url, body, headers, status, detail pattern)
    ("malformed-json", "post", "/v1/path", '{"start": [1, 2], "end": [3', JSON, 400, r"^malformed JSON: "),
    ("not-utf8", "post", "/v1/path", b"\xff\xfe{", JSON, 400, r"error parsing the body"),
    ("deeply-nested", "post", "/v1/path", "[" * 8000 + "]" * 8000, JSON, 400, r"error parsing the body"),
    ("wrong-type-text", "post", "/v1/path", {"start": ["1", 2], "end": [300, 2]}, JSON, 422,
     r"^start\[0\]: Input should be a valid number"),
    ("wrong-type-point", "post", "/v1/path", {"start": "here", "end": [300, 2]}, JSON, 422, r"^start: "),
    ("three-numbers", "post", "/v1/path", {"start": [1, 2, 3], "end": [300, 2]}, JSON, 422, r"^start: .*at most 2"),
    ("nan", "post", "/v1/path", '{"start": [NaN, 2], "end": [300, 2]}', JSON, 422, r"^start\[0\]: .*finite"),
    ("infinity", "post", "/v1/path", '{"start": [1, 2], "end": [Infinity, 2]}', JSON, 422, r"^end\[0\]: .*finite"),
    ("overflow", "post", "/v1/path", '{"start": [1, 2], "end": [1e999, 2]}', JSON, 422, r"^end\[0\]: .*finite"),
    ("coordinate-out-of-range", "post", "/v1/path", {"start": [1e7, 2], "end": [1e7 + 300, 2]}, JSON, 422,
     r"^start\[0\]: Input should be less than or equal to 100000"),
    ("distance-out-of-range", "post", "/v1/path", {"start": [0, 0], "end": [5000, 0]}, JSON, 422,
     r"^start and end are 5000 px apart, outside the model's trained range \[10, 3000\] px$"),
    ("coinciding", "post", "/v1/path", {"start": [5, 5], "end": [5, 5]}, JSON, 422, r"^start and end coincide"),
    ("missing-field", "post", "/v1/path", {"start": [0, 0]}, JSON, 422, r"^end: Field required$"),
    ("unknown-field", "post", "/v1/path", {"start": [0, 0], "end": [100, 0], "sed": 1}, JSON, 422,
     r"^sed: Extra inputs are not permitted$"),
    ("seed-negative", "post", "/v1/path", {"start": [0, 0], "end": [100, 0], "seed": -1}, JSON, 422, r"^seed: "),
    ("seed-float", "post", "/v1/path", {"start": [0, 0], "end": [100, 0], "seed": 1.5}, JSON, 422, r"^seed: "),
    ("not-an-object", "post", "/v1/path", [1, 2], JSON, 422, r"^body: "),
    ("empty-body", "post", "/v1/path", "", JSON, 422, r"^body: Field required$"),
    ("not-json-content-type", "post", "/v1/path", '{"start": [0, 0], "end": [100, 0]}', {"Content-Type": "text/plain"},
     415, r"Content-Type: application/json"),
    ("n-zero", "post", "/v1/sample", {"n": 0}, JSON, 422, r"^n: Input should be greater than or equal to 1$"),
    ("n-negative", "post", "/v1/sample", {"n": -5}, JSON, 422, r"^n: "),
    ("n-over-cap", "post", "/v1/sample", {"n": 1001}, JSON, 422, r"^n: Input should be less than or equal to 1000$"),
    ("n-bool", "post", "/v1/sample", {"n": True}, JSON, 422, r"^n: Input should be a valid integer"),
    ("n-float", "post", "/v1/sample", {"n": 2.5}, JSON, 422, r"^n: "),
    ("distance-negative", "post", "/v1/sample", {"n": 2, "distance_px": -3}, JSON, 422, r"^distance_px: "),
    ("distance-nan", "post", "/v1/sample", '{"n": 2, "distance_px": NaN}', JSON, 422, r"^distance_px: "),
    ("distance-outside-trained", "post", "/v1/sample", {"n": 2, "distance_px": 5000}, JSON, 422,
     r"^distance_px must lie in \[10, 3000\] px \(the model's trained range\), got 5000$"),
    ("direction-out-of-range", "post", "/v1/sample", {"n": 2, "direction": 400}, JSON, 422, r"^direction: "),
    ("oversized-body", "post", "/v1/path", '{"pad": "' + "x" * 20000 + '"}', JSON, 413,
     r"^request body over 16384 bytes$"),
    ("wrong-method", "get", "/v1/path", None, {}, 405, r"^Method Not Allowed$"),
    ("unknown-path", "get", "/v2/path", None, {}, 404, r"^Not Found$"),
]


@pytest.mark.parametrize(("method", "url", "body", "headers", "status", "detail"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_input_is_a_4xx_with_one_line(client, method, url, body, headers, status, detail):
    if method == "get":
        r = client.get(url)
    else:
        content = body if isinstance(body, (str, bytes)) else json.dumps(body)
        r = client.post(url, content=content, headers=headers)
    assert r.status_code == status, r.text
    text = r.json()["detail"]
    assert isinstance(text, str) and "\n" not in text and "Traceback" not in text
    assert __import__("re").search(detail, text), text
    assert client.get("/healthz").status_code == 200


def test_a_streamed_oversized_body_is_cut_off(client):
    chunks = (b"x" * 1000 for _ in range(100))  # no Content-Length: counted while it arrives
    r = client.post("/v1/path", content=chunks, headers=JSON)
    assert r.status_code == 413 and r.json() == {"detail": "request body over 16384 bytes"}


def test_an_internal_error_says_nothing_of_the_code(procedural_ckpt, monkeypatch):
    app = build_app(procedural_ckpt)
    with TestClient(app, raise_server_exceptions=False) as c:
        def broken(*a, **k):
            raise RuntimeError("secret detail of the code\nTraceback (most recent call last)")

        monkeypatch.setattr(app.state.service.sampler, "paths", broken)
        r = post(c, "/v1/path", {"start": [0, 0], "end": [100, 0]})
    assert r.status_code == 500 and r.json() == {"detail": "internal error (the server's log has the details)"}


# ----- API key ----------------------------------------------------------------------------------------------
def test_api_key_guards_the_api_only(procedural_ckpt, monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, "s3cret")
    with TestClient(build_app(procedural_ckpt)) as c:
        body = {"start": [0, 0], "end": [100, 0]}
        for headers in ({}, {"X-API-Key": "wrong"}):
            r = post(c, "/v1/path", body, headers)
            assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]
        assert post(c, "/v1/path", "{not json", {}).status_code == 401  # the key first, nothing parsed
        assert c.get("/v1/model").status_code == 401
        assert post(c, "/v1/path", body, {"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200
    with TestClient(build_app(procedural_ckpt, api_key="other")) as c:  # the option wins over the variable
        assert post(c, "/v1/path", body, {"X-API-Key": "other"}).status_code == 200


# ----- micro-batching ---------------------------------------------------------------------------------------
def test_concurrent_requests_share_model_calls(procedural_ckpt):
    app = build_app(procedural_ckpt, max_wait_ms=50)
    sampler = app.state.service.sampler
    sizes = []
    original = sampler.paths
    sampler.paths = lambda starts, ends, seed=None: sizes.append(len(starts)) or original(starts, ends, seed)

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            sizes.clear()  # the warm-up call
            bodies = [{"start": [0, 0], "end": [100 + k, 50]} for k in range(24)]
            return await asyncio.gather(*(c.post("/v1/path", json=b) for b in bodies))

    answers = asyncio.run(burst())
    assert all(r.status_code == 200 for r in answers)
    assert [r.json()["x"][-1] for r in answers] == [100 + k for k in range(24)]  # each its own answer
    assert sum(sizes) == 24 and len(sizes) <= 4 and max(sizes) >= 6


def test_batcher_groups_by_key_and_runs_seeded_jobs_alone():
    calls = []

    def run(payloads):
        calls.append(list(payloads))
        return [p * 10 for p in payloads]

    async def go():
        b = MicroBatcher(run, max_batch=4, max_wait_s=0.01)
        await b.start()
        jobs = [b.submit(k, "a") for k in range(6)] + [b.submit(100, None), b.submit(7, "b")]
        out = await asyncio.gather(*jobs)
        await b.stop()
        return out

    assert asyncio.run(go()) == [0, 10, 20, 30, 40, 50, 1000, 70]
    assert sorted(map(len, calls)) == [1, 1, 2, 4] and [100] in calls and [7] in calls


def test_batcher_isolates_a_failing_job_and_refuses_when_full():
    release = threading.Event()

    def run(payloads):
        release.wait(5)
        if "bad" in payloads:
            raise ValueError("bad job")
        return payloads

    async def go():
        b = MicroBatcher(run, max_batch=8, max_wait_s=0, max_queue=2)
        await b.start()
        first = asyncio.ensure_future(b.submit("first", "k"))
        await asyncio.sleep(0.05)  # the worker holds "first" in its (blocked) call
        queued = [asyncio.ensure_future(b.submit(p, "k")) for p in ("good", "bad")]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match="2 requests are waiting"):
            await b.submit("third", "k")
        release.set()
        results = await asyncio.gather(first, *queued, return_exceptions=True)
        await b.stop()
        return results

    first, good, bad = asyncio.run(go())
    assert first == "first" and good == "good" and isinstance(bad, ValueError)


def test_a_full_queue_is_a_503(client, monkeypatch):
    async def full(*a, **k):
        raise Overloaded("server busy: 1024 requests are waiting; try again shortly")

    monkeypatch.setattr(client.app.state.service.batcher, "submit", full)
    r = post(client, "/v1/path", {"start": [0, 0], "end": [100, 0]})
    assert r.status_code == 503 and r.headers["Retry-After"] == "1" and r.json()["detail"].startswith("server busy")


# ----- command line -----------------------------------------------------------------------------------------
def test_trajsynth_works_without_the_serve_extra():
    code = ("import sys, trajsynth, trajsynth.cli.main, trajsynth.serving.server, trajsynth.serving.sampler; "
            "assert not {'fastapi', 'uvicorn', 'starlette', 'pydantic'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_serve_command_errors_are_one_line(procedural_ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("trajsynth.cli.serve_cmds.missing_extra",
                        lambda: "serving needs fastapi: pip install 'trajsynth[serve]'")
    assert main(["serve", str(procedural_ckpt)]) == 2
    assert capsys.readouterr().err == "error: serving needs fastapi: pip install 'trajsynth[serve]'\n"
    monkeypatch.undo()
    (tmp_path / "text.pt").write_text("not a checkpoint")
    assert main(["serve", str(tmp_path / "text.pt")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'text.pt'} is not a trajsynth checkpoint " \
        "(not a PyTorch file)"
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["serve", str(procedural_ckpt), "--port", str(busy.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot listen on 127.0.0.1:") and err.count("\n") == 1
