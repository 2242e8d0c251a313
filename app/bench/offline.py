"""`offline_kb` (DESIGN.md §7, issue 23): the offline file of a scenario at its documented step
limit, as `/export.html` sends it (gzip), through the whole application in-process.

The scenarios: `app.bench.engine.scale_scenario` at `OFFLINE_MAX_STEPS` commands in three
shapes (a machine drawn whole, a middle one, the heaviest the weight bound lets through, drawn
as each step's focus), and the built-in lesson whose file is the largest (its answers drawn
too). ``offline_kb`` is the largest; ``offline_s`` the slowest request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from app.bench.engine import scale_scenario
from app.bench.web import call
from app.http.main import create_app
from app.views.deck import OFFLINE_MAX_STEPS
from app.views.links import make_link
from engine.lessons import LESSONS
from engine.syntax import canonical_text

SHAPES = ((4, 4), (8, 8), (64, 16))  # processes × pages, each OFFLINE_MAX_STEPS commands


def offline_links() -> dict[str, str]:
    links = {
        f"{OFFLINE_MAX_STEPS} steps, {procs} × {pages}": make_link(
            "/export.html", canonical_text(scale_scenario(OFFLINE_MAX_STEPS, procs, pages))
        )
        for procs, pages in SHAPES
    }
    for lesson in LESSONS.values():
        links[f"lesson {lesson.name}"] = make_link("/export.html", lesson.text)
    return links


def measure_offline() -> dict[str, Any]:
    app = create_app()
    rows: list[dict[str, Any]] = []
    kbs: list[float] = []
    seconds_each: list[float] = []
    for name, link in offline_links().items():
        start = time.perf_counter()
        status, body = asyncio.run(call(app, link, {}, gzip=True))
        seconds = time.perf_counter() - start
        if status != 200:
            raise RuntimeError(f"/export.html of {name}: status {status}")
        kbs.append(round(len(body) / 1024, 1))
        seconds_each.append(round(seconds, 2))
        rows.append({"scenario": name, "kb": kbs[-1], "s": seconds_each[-1]})
    return {
        "offline_kb": max(kbs),
        "offline_s": max(seconds_each),
        "offline_files": rows,
    }
