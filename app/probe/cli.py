"""`cowlab probe`: run presets or a scenario file on this kernel and in the simulator.

    cowlab probe [--json] [--frames] [--preset NAME …] [--timeout S] [FILE|- …]
    cowlab probe --kernel IMAGE [--modules DIR|DEB] [--swap zram|file|none] [--json] [FILE …]

Maps the running kernel's version to a policy id, runs every preset (or the named ones, or the
file) on the kernel and in the simulator under that policy, and reports per scenario what each
observed and whether they agree. Exit status: 0 when nothing disagrees (skips do not count: the
kernel could not answer), 1 when something disagrees, 2 for bad input (unknown preset, syntax
error, unreadable file, a kernel image or module directory that cannot be used, a VM that
cannot be booted: QEMU or busybox-static missing).

With ``--kernel``, the scenarios run on that kernel instead, booted under QEMU (`app.probe.vm`):
every one in one boot, as the static programs of `cowlab export c`; the report names the VM's
release and its era.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    parser.add_argument(
        "file", nargs="*", metavar="FILE", help="scenario text (repeatable); - reads stdin"
    )
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
    parser.add_argument(
        "--kernel",
        metavar="IMAGE",
        help=(
            "boot this kernel image (a vmlinuz/bzImage, or a linux-image .deb, unpacked, never "
            "installed) under QEMU and probe there; nothing on this machine changes"
        ),
    )
    parser.add_argument(
        "--modules",
        metavar="DIR|DEB",
        help=(
            "the image's modules (lib/modules/RELEASE, a root holding it, or a .deb), for a "
            "zram or virtio swap device; default: beside an image found at ROOT/boot/vmlinuz-R"
        ),
    )
    parser.add_argument(
        "--swap",
        choices=["zram", "file", "none"],
        default="zram",
        help="with --kernel: the VM's swap device, zram or a virtio disk (default zram)",
    )
    parser.set_defaults(func=cmd_probe)


def cmd_probe(args: argparse.Namespace) -> int:
    # app.cli.main owns input handling (InputError -> one line on stderr, exit 2); imported here
    # because app.cli.main imports this module while it builds its parser.
    from app.cli.main import InputError, describe_scenario_error, read_file, read_stdin

    files: list[tuple[str, str]] = []
    for file in args.file:
        source, text = ("<stdin>", read_stdin()) if file == "-" else read_file(file)
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
    if args.kernel is None and args.modules is not None:
        raise InputError("--modules needs --kernel IMAGE")
    if args.kernel is not None:
        report = _probe_in_vm(args, files)
    else:
        report = probe(presets=args.preset, files=files, timeout=args.timeout, frames=args.frames)
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        sys.stdout.write(format_report(report))
    return EXIT_OK if report.ok else EXIT_DISAGREE


def _probe_in_vm(args: argparse.Namespace, files: list[tuple[str, str]]) -> ProbeReport:
    from app.cli.main import InputError
    from app.probe import vm

    if args.frames:
        raise InputError(
            "--frames compares frames on this machine's kernel only, not with --kernel"
        )
    names = list(args.preset) if args.preset is not None else ([] if files else list(PRESETS))
    scenarios = [(n, PRESETS[n].title, parse(PRESETS[n].text)) for n in names]
    scenarios += [(source, "", parse(text)) for source, text in files]
    modules = Path(args.modules) if args.modules is not None else None
    try:
        return vm.probe_in_vm(
            scenarios, Path(args.kernel), modules=modules, swap=args.swap, timeout=args.timeout
        ).report
    except vm.VMError as err:
        raise InputError(str(err)) from None


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
