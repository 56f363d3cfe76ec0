"""Screenshot of the page of ``trajsynth serve`` for the README: docs/serve_screenshot.png.

Serves a model on loopback, opens the page in headless Chromium (Playwright driving an installed
Chromium: no browser is downloaded), clicks a start and an end point, waits for the replay to
finish and saves the page. Without CKPT it fits the ``procedural`` family on the embedded data
first (seconds); ``--data-dir embedded`` (the default) draws a real movement beside the generated one.

    python scripts/serve_screenshot.py [CKPT] [--out docs/serve_screenshot.png] [--chromium /usr/bin/chromium]

The functions are shared with tests/test_serve_browser.py.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1400, "height": 760}


def open_page(browser, url: str):
    """A page of the served app with the model card loaded."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(url)
    page.wait_for_function("window.trajsynth && window.trajsynth.model !== null", timeout=30_000)
    return page


def click_and_replay(page, start: tuple[float, float], end: tuple[float, float], timeout_ms: int = 30_000) -> dict:
    """Click ``start`` then ``end`` (canvas coordinates), wait until the replay is done; what the page drew.

    Returns the page's ``window.trajsynth`` (start, end, movement, real, drawn: the path as drawn, in
    canvas coordinates).
    """
    box = page.evaluate("""() => { const c = document.getElementById('canvas'), r = c.getBoundingClientRect();
        return {left: r.left + c.clientLeft, top: r.top + c.clientTop, scale: c.width / c.clientWidth}; }""")
    for x, y in (start, end):  # canvas pixels → page pixels (inside the border)
        page.mouse.click(box["left"] + x / box["scale"], box["top"] + y / box["scale"])
    page.wait_for_function("document.getElementById('canvas').dataset.state === 'done'", timeout=timeout_ms)
    return page.evaluate("() => JSON.parse(JSON.stringify(window.trajsynth))")


def fitted_model(out: Path) -> Path:
    """A procedural model fitted on the embedded data (seconds), for when no checkpoint is given."""
    from trajsynth.data.embedded import embedded_data_dir
    from trajsynth.data.train_data import load_train_data
    from trajsynth.training.loop import Trainer
    from trajsynth.training.setup import build_run_config

    data = load_train_data(embedded_data_dir())
    run = build_run_config("procedural", None, {}, data.train.max_len)
    return Trainer(run, data, out, tensorboard=False, progress=False, log_lines=False).train()


def screenshot(checkpoint: Path, out: Path, data_dir: str | None, chromium: str, seed: int = 2) -> dict:
    from playwright.sync_api import sync_playwright

    from trajsynth.data.embedded import resolve_data_dir
    from trajsynth.serving.server import build_app, running

    app = build_app(checkpoint, data_dir=resolve_data_dir(data_dir) if data_dir else None)
    with running(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium)
        try:
            page = open_page(browser, url)
            page.fill("#seed", str(seed))  # the same picture on every run
            state = click_and_replay(page, (170, 400), (700, 170))
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()
    return state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", nargs="?", help="a finished model (default: fit procedural on the embedded data)")
    ap.add_argument("--out", default="docs/serve_screenshot.png", help="PNG to write")
    ap.add_argument("--data-dir", default="embedded", help="real movements to draw beside ('' for none)")
    ap.add_argument("--chromium", default=CHROMIUM, help="the Chromium executable")
    ap.add_argument("--seed", type=int, default=2, help="seed of the generated and the real movement")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(a.checkpoint) if a.checkpoint else fitted_model(Path(tmp))
        state = screenshot(ckpt, Path(a.out), a.data_dir or None, a.chromium, a.seed)
    print(f"wrote {a.out}: {len(state['drawn'])} points drawn from {state['start']} to {state['end']}")


if __name__ == "__main__":
    main()
