"""`cowlab bench`: the budgets of DESIGN.md §7, measured, not asserted in unit tests.

    cowlab bench [--quick] [--json] [--browser] [--live] [--vm]  # figures against the budgets
    cowlab bench --load [LOAD OPTIONS] [--json]   # the load test (`app.bench.load`)

The figures come from `app.bench.engine` (replay in this process) and `app.bench.web` (the web
app, when it is importable); each is a median over repeated runs, and ``--quick`` repeats less.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any

from app.bench import lab
from app.bench.engine import measure_engine

# The budgets of DESIGN.md §7 that `cowlab bench` measures (the others need --browser, --live
# or a policy lab, which do not exist yet).
BUDGETS = {
    "replay_ms_p50": 1.0,
    "scale_replay_s": 1.0,
    "scale_thp_replay_s": 1.0,
    "cold_step_ms_p50": 3.0,
    "cold_step_ms_p99": 10.0,
    "class_ratio": 2.0,  # a lower bound
    "first_load_kb": 100.0,
    "worst_request_s": 2.0,
    "worst_body_mb": 50.0,
    "live_fanout_ms_p99": 250.0,  # with --live
    "live_kb_per_student": 64.0,
    "live_redis_fanout_ms_p99": 250.0,
    "live_redis_kb_per_student": 64.0,
    "live_nginx_fanout_ms_p99": 250.0,  # the class setup: nginx, 2 workers, Redis
    "live_nginx_kb_per_student": 64.0,
    "live_recover_worker_s": 5.0,
    "live_recover_redis_s": 15.0,
    "click_paint_ms_p50": 33.0,  # with --browser
    "click_paint_ms_p99": 50.0,
    "sweep_s": 30.0,
    "custom_column_ms": 100.0,
    "lab_rss_mb": 150.0,
}
LOWER_BOUNDS = {"class_ratio"}

# The load test's options and their values when not given. They default to None on the parser
# so that one given without --load is refused rather than silently ignored.
LOAD_DEFAULTS: dict[str, Any] = {
    "duration": 30.0,
    "clients": 32,
    "workers": 2,
    "seed": 1,
    "think": 0.0,
    "max_growth_mb": 32.0,
    "mix": False,
    "proxy": False,
    "kill_worker_at": None,
    "slow_sockets": 0,
    "slow_phase": 15.0,
    "allowed_errors": 0,
    "deploy": False,
}
EXIT_USAGE = 2


def measure(
    quick: bool, live: bool = False, browser: bool = False, vm: bool = False
) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "quick": quick,
    }
    figures.update(measure_engine(quick))
    figures.update(lab.measure_lab(quick))
    try:
        from app.bench import web
    except ImportError:  # the web app is optional for the engine figures
        pass
    else:
        figures.update(web.measure_web(quick))
    if browser:
        from app.bench.browser import measure_browser

        figures.update(measure_browser(quick))
    if live:
        from app.live.bench import measure_live

        figures.update(measure_live(quick))
    if vm:
        from app.bench.vm import measure_vm

        figures.update(measure_vm())
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
    for name in ("vm_boot_s", "vm_presets_s"):
        if name in figures:
            out.append(f"  {name:<18} {figures[name]:>10}   (QEMU TCG, {figures['vm_kernel']})")
    if "vm_unavailable" in figures:
        out.append(f"  no VM figures: {figures['vm_unavailable']}")
    out.append("  replay time by size (64 processes):")
    out.append("    commands  pages/proc  replay_s")
    for row in figures["growth"]:
        out.append(f"    {row['commands']:>8}  {row['pages']:>10}  {row['replay_s']:.3f}")
    return "\n".join(out)


def _usage_error(message: str) -> int:
    sys.stderr.write(f"cowlab bench: error: {message}\n")
    return EXIT_USAGE


def run_load(args: argparse.Namespace) -> int:
    if args.quick:
        return _usage_error("--quick is for the figures; the load test runs --duration seconds")
    for name, default in LOAD_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    try:
        from app.bench import load
    except ImportError as err:  # httpx, the load test's client, is not a runtime dependency
        return _usage_error(f"--load needs {err.name}: pip install 'cowlab[bench]'")
    problem = load.settle(args)
    if problem is not None:
        return _usage_error(problem)
    return load.main(args)


def run(args: argparse.Namespace) -> int:
    if args.load:
        return run_load(args)
    given = [name for name in LOAD_DEFAULTS if getattr(args, name) is not None]
    if given:
        option = "--" + given[0].replace("_", "-")
        return _usage_error(f"{option} is an option of the load test: add --load")
    figures = measure(args.quick, args.live, args.browser, args.vm)
    if args.json:
        json.dump(figures, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_text(figures))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure the speed budgets of DESIGN.md §7, or load a server (--load)",
        description="Measure replay and web figures against the budgets; medians of "
        "repeated runs in one process. With --load, run the load test instead: many "
        "simulated students against a server of its own on 127.0.0.1.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 45 s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--browser",
        action="store_true",
        help="also measure click → painted step in Debian's chromium (60 clicks, reduced motion)",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="also measure live-session fan-out: 500 event streams on one worker, then two "
        "workers sharing the room through a throwaway redis-server, then the class setup "
        "(nginx, two workers, Redis) with a worker and Redis killed (loopback only)",
    )
    parser.add_argument(
        "--vm",
        action="store_true",
        help="also boot Debian's 6.1 under QEMU TCG with every preset's program (vm_boot_s, "
        "vm_presets_s; the package is fetched once with apt-get download)",
    )
    parser.add_argument("--load", action="store_true", help="run the load test (docs/deploy.md)")
    load = parser.add_argument_group("load test (with --load)")
    load.add_argument("--duration", type=float, metavar="S", help="seconds of load (30)")
    load.add_argument("--clients", type=int, metavar="N", help="concurrent clients (32)")
    load.add_argument("--workers", type=int, metavar="N", help="uvicorn workers (2)")
    load.add_argument("--seed", type=int, metavar="N", help="seed of the sessions (1)")
    load.add_argument(
        "--think",
        type=float,
        metavar="S",
        help="mean pause of a client between requests, in seconds (0: as fast as answered)",
    )
    load.add_argument(
        "--max-growth-mb", type=float, metavar="MB", help="memory growth still called flat (32)"
    )
    load.add_argument(
        "--mix",
        action="store_true",
        default=None,
        help="presets, random scenarios of each client's own and a whole class on one link",
    )
    load.add_argument(
        "--proxy", action="store_true", default=None, help="nginx in front of the workers"
    )
    load.add_argument(
        "--kill-worker-at", type=float, metavar="S", help="SIGKILL one worker S s into the run"
    )
    load.add_argument("--slow-sockets", type=int, metavar="N", help="then hold N slow sockets open")
    load.add_argument("--slow-phase", type=float, metavar="S", help="for S seconds (15)")
    load.add_argument(
        "--allowed-errors",
        type=int,
        metavar="N",
        help="errors still a success (0; --deploy: the requests a killed worker may hold)",
    )
    load.add_argument(
        "--deploy",
        action="store_true",
        default=None,
        help="the run of docs/deploy.md: --duration 60 --workers 2 --mix --proxy "
        "--kill-worker-at 30 --slow-sockets 1100",
    )
    parser.set_defaults(func=run)
