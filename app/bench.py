"""`cowlab bench`: the budgets of DESIGN.md §7, measured, not asserted in unit tests.

Engine figures:
- ``replay_ms_p50``: median in-process replay of a 30-command scenario (budget ≤ 1 ms);
- ``scale_replay_s``: 1,000 commands, 64 processes, 256 pages each (budget ≤ 1 s);
- ``growth``: replay time for growing command counts and page counts, to show it grows
  linearly.

Web figures are added by `app.webbench` when it is importable (it needs the web app).
Each figure is a median over repeated runs in one process; ``--quick`` repeats less.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from app import labbench
from engine.commands import Scenario
from engine.syntax import parse
from engine.trace import replay

# The budgets of DESIGN.md §7 that `cowlab bench` measures (the others need --browser or
# --live, which do not exist yet).
BUDGETS = {
    "replay_ms_p50": 1.0,
    "scale_replay_s": 1.0,
    "cold_step_ms_p50": 3.0,
    "cold_step_ms_p99": 10.0,
    "class_ratio": 2.0,  # a lower bound
    "first_load_kb": 100.0,
    "sweep_s": 30.0,
    "custom_column_ms": 100.0,
}
LOWER_BOUNDS = {"class_ratio"}

# Thirty commands that touch every mechanism a lesson uses: fork, COW, pins, pipes, swap,
# mprotect, clear_refs and a file.
THIRTY_COMMANDS = """
file F data
P mmap a b c
P mmap f file=F
P write a p1
P write b p2
P read c
P read f
P fork C
C vmsplice a as pipe
C munmap a
P write a p3
pipe read
P pin b ro longterm as dev
P write b p4
dev read
P swapout c
C read b
C write b c1
P read b
P mprotect a ro
P clear-softdirty
P mprotect a rw
P write a p5
P iouring b as io
io write dma
P read b
C exit
P write f pf
P read f
dev release
"""


def scale_scenario(commands: int, procs: int, pages: int) -> Scenario:
    """A scenario of exactly ``commands`` commands with ``procs`` processes of ``pages`` pages.

    The root maps and writes every page, forks the other processes (each fork copies the whole
    page table), then the processes take turns writing and reading pages round-robin, which
    makes every kind of fault happen: COW copies, reuses, reads of shared pages.
    """
    names = [f"p{i}" for i in range(procs)]
    page_names = [f"g{j}" for j in range(pages)]
    lines = [f"p0 mmap {' '.join(page_names)}"]
    lines += [f"p0 write {page} v" for page in page_names[: max(0, commands // 4)]]
    lines += [f"p0 fork {child}" for child in names[1:]]
    i = 0
    while len(lines) < commands:
        proc = names[i % procs]
        page = page_names[(i * 7) % pages]
        lines.append(f"{proc} write {page} w{i}" if i % 3 else f"{proc} read {page}")
        i += 1
    return parse("\n".join(lines[:commands]))


def _median_seconds(run: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure_engine(quick: bool) -> dict[str, Any]:
    thirty = parse(THIRTY_COMMANDS)
    assert len(thirty.commands) == 30
    replay_s = _median_seconds(lambda: replay(thirty, "latest"), 50 if quick else 400)
    scale = scale_scenario(1000, 64, 256)
    scale_s = _median_seconds(lambda: replay(scale, "latest"), 3 if quick else 7)
    growth = []
    for commands, pages in ((250, 256), (500, 256), (1000, 256), (1000, 64), (1000, 128)):
        scenario = scale_scenario(commands, 64, pages)
        seconds = _median_seconds(partial(replay, scenario, "latest"), 2 if quick else 5)
        growth.append({"commands": commands, "procs": 64, "pages": pages, "replay_s": seconds})
    return {
        "replay_ms_p50": round(replay_s * 1000, 3),
        "scale_replay_s": round(scale_s, 3),
        "growth": growth,
    }


def measure(quick: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "quick": quick,
    }
    figures.update(measure_engine(quick))
    figures.update(labbench.measure_lab(quick))
    try:
        from app import webbench
    except ImportError:  # the web app is optional for the engine figures
        webbench = None  # type: ignore[assignment]
    if webbench is not None:
        figures.update(webbench.measure_web(quick))
    figures["budgets"] = {
        name: {
            "budget": budget,
            "measured": figures[name],
            "met": figures[name] >= budget if name in LOWER_BOUNDS else figures[name] <= budget,
        }
        for name, budget in BUDGETS.items()
        if name in figures
    }
    return figures


def render_text(figures: dict[str, Any]) -> str:
    out = [f"cowlab bench ({'quick' if figures['quick'] else 'full'}) on {figures['machine']}"]
    for name, row in figures["budgets"].items():
        bound = "≥" if name in LOWER_BOUNDS else "≤"
        verdict = "ok" if row["met"] else "OVER BUDGET"
        measured, budget = row["measured"], row["budget"]
        out.append(f"  {name:<18} {measured:>10}   budget {bound} {budget:<6} {verdict}")
    out.append("  replay time by size (64 processes):")
    out.append("    commands  pages/proc  replay_s")
    for row in figures["growth"]:
        out.append(f"    {row['commands']:>8}  {row['pages']:>10}  {row['replay_s']:.3f}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    figures = measure(args.quick)
    if args.json:
        json.dump(figures, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_text(figures))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure the speed budgets of DESIGN.md §7",
        description="Measure replay and web figures against the budgets; medians of "
        "repeated runs in one process.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 45 s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(func=run)
