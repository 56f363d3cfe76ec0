"""End to end: the real server (uvicorn on loopback, a free port) and a real headless Chromium on the page at ``/``.

Chromium is the system's (``/usr/bin/chromium``, Debian's package), driven by the Python
``playwright`` package: no browser is downloaded. The test skips, saying which, when either is
missing. The page's helpers are the screenshot script's (``scripts/serve_screenshot.py``).
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest
from conftest import REPO_ROOT

pytest.importorskip("fastapi", reason="the serve extra (pip install 'trajsynth[serve]') is not installed")
pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install playwright)")
from playwright.sync_api import sync_playwright  # noqa: E402

from trajsynth.data.embedded import embedded_data_dir  # noqa: E402
from trajsynth.data.train_data import load_train_data  # noqa: E402
from trajsynth.serving.server import build_app, running  # noqa: E402
from trajsynth.training.loop import Trainer  # noqa: E402
from trajsynth.training.setup import build_run_config  # noqa: E402

_spec = importlib.util.spec_from_file_location("serve_screenshot", REPO_ROOT / "scripts" / "serve_screenshot.py")
shots = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shots)

if not os.access(shots.CHROMIUM, os.X_OK):
    pytest.skip(f"no Chromium at {shots.CHROMIUM} (Debian: apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=shots.CHROMIUM)
        yield b
        b.close()


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    data = load_train_data(embedded_data_dir())
    run = build_run_config("procedural", "tiny", {}, data.train.max_len)
    ckpt = Trainer(run, data, tmp_path_factory.mktemp("procedural"), tensorboard=False, progress=False,
                   log_lines=False).train()
    with running(build_app(ckpt, data_dir=embedded_data_dir())) as base:
        yield base


def test_clicked_points_are_where_the_drawn_path_starts_and_ends(browser, url, tmp_path):
    page = shots.open_page(browser, url)
    start, end = (120.0, 300.0), (520.0, 140.0)
    state = shots.click_and_replay(page, start, end)
    drawn = np.array(state["drawn"])  # (L, 2) canvas px, as drawn
    m = state["movement"]
    assert len(drawn) == len(m["t_ms"]) >= 2  # the replay finished: every point is drawn
    assert np.allclose(drawn[0], start, atol=1.0) and np.allclose(drawn[-1], end, atol=1.0)  # mouse events: whole px
    assert np.allclose(drawn[0], state["start"], atol=1e-3) and np.array_equal(drawn[-1], state["end"])
    assert state["real"] is not None and page.locator("#real-legend").is_visible()
    assert page.locator("#canvas").get_attribute("data-state") == "done"
    assert "procedural" in page.locator("#model").inner_text()
    page.screenshot(path=str(tmp_path / "serve_page.png"), full_page=True)
    assert (tmp_path / "serve_page.png").stat().st_size > 10_000


def test_typed_distance_and_direction_and_downloads(browser, url, tmp_path):
    page = shots.open_page(browser, url)
    page.fill("#distance", "300")
    page.fill("#direction", "90")
    page.click("#typed button")
    page.wait_for_function("document.getElementById('canvas').dataset.state === 'done'", timeout=30_000)
    state = page.evaluate("() => JSON.parse(JSON.stringify(window.trajsynth))")
    (x0, y0), (x1, y1) = state["drawn"][0], state["drawn"][-1]
    assert np.isclose(x1 - x0, 0, atol=1e-6) and np.isclose(y1 - y0, 300, atol=1e-6)  # 90 degrees: down
    with page.expect_download() as got:
        page.click("#download-json")
    saved = json.loads(open(got.value.path()).read())
    assert saved["t_ms"] == state["movement"]["t_ms"] and saved["model"] == "procedural"
    with page.expect_download() as got:
        page.click("#download-csv")
    lines = open(got.value.path()).read().splitlines()
    assert lines[0] == "t_ms,x,y" and len(lines) == 1 + len(saved["t_ms"])


def test_a_refused_request_is_shown_not_drawn(browser, url):
    page = shots.open_page(browser, url)
    page.fill("#distance", "50000")  # beyond the model's trained range
    page.click("#typed button")
    page.wait_for_function("document.getElementById('canvas').dataset.state === 'error'", timeout=30_000)
    assert page.locator("#status").inner_text().startswith("422: ")
