"""`cowlab bench --browser`: click → painted step in real chromium (DESIGN.md §7).

``click_paint_ms_p50`` / ``click_paint_ms_p99``: a uvicorn worker on loopback (the one
`app.bench.web` starts), Debian's chromium driven by Playwright with ``prefers-reduced-motion:
reduce``, 60 presses of → and ← through the thirty-command scenario of `app.bench`. Each is
timed in the page from the key event's ``timeStamp`` to the second ``requestAnimationFrame``
after the swap settles (``htmx:after:settle``, or ``cowlab:stepped`` for a step swapped in from
the page's step deck with no request): the first callback runs before the frame that shows the
new step is painted, the second once it has been.

Playwright and chromium are test dependencies: without them the figures are absent and the
reason is reported instead.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from app.bench.engine import THIRTY_COMMANDS
from app.bench.web import bench_server
from app.views.links import make_link

CHROMIUM = Path("/usr/bin/chromium")
CLICKS = 60

# Installed before the page's own scripts: the key's timestamp, then two frames after the
# first settle that follows it (one answer settles region by region).
_PROBE = """
window.__clickPaint = [];
let pending = null;
document.addEventListener("keydown", (ev) => { pending = ev.timeStamp; }, true);
const painted = () => {
  if (pending === null) return;
  const start = pending;
  pending = null;
  requestAnimationFrame(() => requestAnimationFrame(() => {
    window.__clickPaint.push(performance.now() - start);
  }));
};
// A step from the page's deck (static/steps.js) is swapped in with no request: no htmx event.
document.addEventListener("htmx:after:settle", painted);
document.addEventListener("cowlab:stepped", painted);
"""


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def measure_browser(quick: bool) -> dict[str, Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"click_paint_skipped": "playwright is not installed"}
    if not CHROMIUM.exists():
        return {"click_paint_skipped": f"{CHROMIUM} is not installed"}
    text = "\n".join(line for line in THIRTY_COMMANDS.strip().splitlines())
    link = make_link("/", text, policy="5.7", step=0)
    keys = (["ArrowRight"] * 30 + ["ArrowLeft"] * 30)[: CLICKS // 2 if quick else CLICKS]
    with bench_server(1024) as port, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(reduced_motion="reduce", viewport={"width": 1366, "height": 768})
        page.add_init_script(_PROBE)
        page.goto(f"http://127.0.0.1:{port}{link}")
        page.wait_for_load_state("networkidle")
        for done, key in enumerate(keys, start=1):
            page.keyboard.press(key)
            # Polled from here: the page's CSP (rightly) refuses the eval that Playwright's
            # wait_for_function needs.
            deadline = time.monotonic() + 10
            while page.evaluate("window.__clickPaint.length") < done:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"click {done} was never painted")
                page.wait_for_timeout(20)
            # A reader looks at a step before the next press; so does the benchmark.
            page.wait_for_timeout(120)
        times: list[float] = page.evaluate("window.__clickPaint")
        browser.close()
    return {
        "click_paint_ms_p50": round(statistics.median(times), 1),
        "click_paint_ms_p99": round(_percentile(times, 99), 1),
        "click_paint_clicks": len(times),
    }
