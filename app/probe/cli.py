"""`cowlab probe`: run presets or a scenario file on this kernel and in the simulator.

    cowlab probe [--json] [--frames] [--preset NAME …] [--timeout S] [FILE|-]

Maps the running kernel's version to a policy id, runs every preset (or the named ones, or the
file) on the kernel and in the simulator under that policy, and reports per scenario what each
observed and whether they agree. Exit status: 0 when nothing disagrees (skips do not count: the
kernel could not answer), 1 when something disagrees, 2 for bad input (unknown preset, syntax
error, unreadable file).
"""

from __future__ import annotations

import argparse
import json
import sys

from app.probe.compare import DEFAULT_TIMEOUT, ProbeReport, ProbeResult, probe
from engine.presets import PRESETS
from engine.syntax import ScenarioError, parse

EXIT_OK = 0
EXIT_DISAGREE = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``probe`` to the ``cowlab`` command line; its handler is ``args.func``."""
    parser = subparsers.add_parser(
        "probe",
        help="run scenarios on this machine's kernel and compare with the simulator",
        description=(
            "Run presets (all of them by default) or a scenario file on the running kernel — "
            "real processes, pages, pipes and io_uring buffers — and in the simulator under the "
            "policy of this kernel's version; report what each observed. Scenarios that need "
            "something this kernel does not offer (gup_test, swap, soft-dirty…) are skipped "
            "with the reason. Exit 0 when nothing disagrees, 1 when something does."
        ),
    )
    parser.add_argument("file", nargs="?", metavar="FILE", help="scenario text; - reads stdin")
    parser.add_argument(
        "--preset",
        action="append",
        metavar="NAME",
        default=None,
        help="probe this preset (repeatable); default: every preset, unless FILE is given",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--frames",
        action="store_true",
        help=(
            "also compare what each write did to its frame (kept, replaced by a copy, new), "
            "read from /proc/self/pagemap, which shows frame numbers to root only"
        ),
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"hard limit per scenario on the kernel, in seconds (default {DEFAULT_TIMEOUT:g})",
    )
    parser.set_defaults(func=cmd_probe)


def cmd_probe(args: argparse.Namespace) -> int:
    # app.cli.main owns input handling (InputError -> one line on stderr, exit 2); imported here
    # because app.cli.main imports this module while it builds its parser.
    from app.cli.main import InputError, describe_scenario_error, read_file, read_stdin

    files: list[tuple[str, str]] = []
    if args.file is not None:
        source, text = ("<stdin>", read_stdin()) if args.file == "-" else read_file(args.file)
        try:
            parse(text)
        except ScenarioError as err:
            raise InputError(describe_scenario_error(source, text, err)) from None
        files.append((source, text))
    for name in args.preset or []:
        if name not in PRESETS:
            raise InputError(f"unknown preset {name!r} (cowlab presets lists them)")
    if args.timeout <= 0:
        raise InputError("--timeout must be positive")
    report = probe(presets=args.preset, files=files, timeout=args.timeout, frames=args.frames)
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        sys.stdout.write(format_report(report))
    return EXIT_OK if report.ok else EXIT_DISAGREE


def format_report(report: ProbeReport) -> str:
    lines = [f"kernel {report.kernel} -> policy {report.policy}", f"swap: {report.swap}", ""]
    width = max((len(r.preset) for r in report.results), default=0)
    for result in report.results:
        lines.append(f"{result.status:<9} {result.preset:<{width}}  {_summary(result)}")
        if result.agree is False:
            lines.extend(_differences(result))
    counts = {s: sum(r.status == s for r in report.results) for s in ("agree", "disagree")}
    skipped = sum(r.status == "skipped" for r in report.results)
    lines += ["", f"{counts['agree']} agree, {counts['disagree']} disagree, {skipped} skipped"]
    return "\n".join(lines) + "\n"


def _summary(result: ProbeResult) -> str:
    if result.skipped is not None:
        return result.skipped
    reads = ", ".join(f"{o.step}:{o.value}" for o in result.kernel_observed)
    return f"kernel saw {reads}" if reads else "nothing to observe"


def _differences(result: ProbeResult) -> list[str]:
    differing = set(result.differing_steps)
    return [
        f"    step {step} `{command}`: kernel {kernel}, simulator {sim}"
        for step, command, kernel, sim in result.by_step("-")
        if step in differing
    ]
