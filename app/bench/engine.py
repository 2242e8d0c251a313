"""The engine's figures for `cowlab bench` (DESIGN.md §7), measured in this process:

- ``replay_ms_p50``: median in-process replay of a 30-command scenario (budget ≤ 1 ms);
- ``scale_replay_s``: 1,000 commands, 64 processes, 256 pages each (budget ≤ 1 s);
- ``scale_thp_replay_s``: 1,000 commands, 64 processes, 64 transparent huge pages each
  (budget ≤ 1 s): THP faults, PMD sharing at fork, splits and subpage copies;
- ``growth``: replay time for growing command counts and page counts, to show it grows
  linearly.

Each figure is a median over repeated runs; ``quick`` repeats less. `app.bench.command` judges
them against the budgets.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from engine.commands import Backing, Scenario
from engine.syntax import parse
from engine.trace import replay

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


def scale_scenario(commands: int, procs: int, pages: int, backing: Backing = "base") -> Scenario:
    """A scenario of exactly ``commands`` commands with ``procs`` processes of ``pages`` pages
    (each a 2 MiB huge page with ``backing``).

    The root maps and writes every page, forks the other processes (each fork copies the whole
    page table), then the processes take turns writing and reading pages round-robin, which
    makes every kind of fault happen: COW copies, reuses, reads of shared pages.
    """
    names = [f"p{i}" for i in range(procs)]
    page_names = [f"g{j}" for j in range(pages)]
    option = "" if backing == "base" else f" backing={backing}"
    lines = [f"p0 mmap {' '.join(page_names)}{option}"]
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
    thp = scale_scenario(1000, 64, 64, "thp")
    thp_s = _median_seconds(lambda: replay(thp, "latest"), 3 if quick else 7)
    growth = []
    for commands, pages in ((250, 256), (500, 256), (1000, 256), (1000, 64), (1000, 128)):
        scenario = scale_scenario(commands, 64, pages)
        seconds = _median_seconds(partial(replay, scenario, "latest"), 2 if quick else 5)
        growth.append({"commands": commands, "procs": 64, "pages": pages, "replay_s": seconds})
    return {
        "replay_ms_p50": round(replay_s * 1000, 3),
        "scale_replay_s": round(scale_s, 3),
        "scale_thp_replay_s": round(thp_s, 3),
        "growth": growth,
    }
