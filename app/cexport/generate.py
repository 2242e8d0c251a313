"""The C program of a scenario: the probe's executor (`app.probe.executor`) written out in C.

The program is the fixed runtime (`runtime.c`, beside this file) with the scenario in between:
one small function per step, run by the scenario process that performs it, and tables of what
each step needs and what every era expects. It does what the probe does, in the same way: every
scenario process is a real forked process serving requests on a socket, every page a page-sized
mapping at an address of its own, every reference a real object (a pipe the page was
vmsplice()d into, a gup_test pin, an io_uring fixed buffer); a coordinator (the program's first
process, a child subreaper) runs the steps, holds the pipes and pins, resolves userfaultfd
write-protect faults, and reaps and releases everything on every way out.

What the program prints is what `app.probe.compare` compares: per step, the value a read
observed, SIGSEGV, "call fails" for any errno, what MADV_PAGEOUT did, and the userfaults
delivered, joined as the probe joins them. Every era's expectation is the engine's, computed here
from its trace (`compare.sim_observations`) and embedded, so the program needs nothing else.

The text depends on the scenario alone: the same scenario gives the same bytes, in the CLI and
on the web.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from app.cexport.ctext import c_comment, c_string
from app.cexport.runtime import FEATURES, runtime, trim
from app.cexport.steps import NEED, NEEDS, Step, plan, step_function

# The probe's own rule of which pageouts neither side can observe (a file page), so that the
# program compares exactly as the probe does.
from app.probe.compare import _file_pageout, _sim_frame, sim_observations
from app.views.links import make_link
from engine import commands as c
from engine.annotations import SwapDevice
from engine.policies import POLICIES
from engine.syntax import canonical_text, format_command
from engine.trace import Trace, replay

SWAP_DEVICES: tuple[SwapDevice, ...] = ("file", "zram")


class ExportRefused(ValueError):
    """A scenario the generator cannot write a faithful program for; the message says why."""


# ------------------------------------------------------------------------------ expectations
def _variants(scenario: c.Scenario) -> tuple[tuple[SwapDevice, ...], str]:
    """The swap devices the expectations are computed for, and the one the scenario names.

    As the probe: a scenario that pages out runs in the simulator on the machine's device,
    unless its `#swap` line names one (then another device is a skip)."""
    pages_out = any(isinstance(cmd, c.Swapout) for cmd in scenario.commands)
    named = any(r.text.split()[:1] == ["#swap"] for r in scenario.remarks)
    own = scenario.annotations.swap
    if not pages_out:
        return (own,), ""
    if named:
        return (own,), own
    return (own, *(d for d in SWAP_DEVICES if d != own)), ""


def _on_device(scenario: c.Scenario, device: SwapDevice) -> c.Scenario:
    annotations = dataclasses.replace(scenario.annotations, swap=device)
    return dataclasses.replace(scenario, annotations=annotations)


def _expected(trace: Trace) -> dict[int, str]:
    joined: dict[int, list[str]] = {}
    for obs in sim_observations(trace):
        joined.setdefault(obs.step, []).append(obs.value)
    return {step: " + ".join(values) for step, values in joined.items()}


def _expected_frames(trace: Trace) -> dict[int, str]:
    """What each store does to its frame, in the program's words: "frame kept" or "frame
    replaced" (a first touch, "new", is never shown: the program populates a huge page when
    it maps it, where the simulator faults it in at the first store)."""
    out = {}
    for before, step in itertools.pairwise(trace.steps):
        frame = _sim_frame(before, step)
        if frame in ("kept", "replaced"):
            out[step.index] = f"frame {frame}"
    return out


def _said(trace: Trace) -> dict[int, str]:
    """The engine's verdicts at each step, in words ("leak: …; userfault: …")."""
    out: dict[int, list[str]] = {}
    for verdict in trace.verdicts:
        out.setdefault(verdict.step, []).append(f"{verdict.kind}: {verdict.text}")
    return {step: "; ".join(texts) for step, texts in out.items()}


@dataclass(frozen=True, slots=True)
class _Expectations:
    """One era's expectations on one swap device, step -> text."""

    values: dict[int, str]
    frames: dict[int, str]
    said: dict[int, str]


# ------------------------------------------------------------------------------ the program
def _header(scenario: c.Scenario) -> Iterator[str]:
    title = scenario.annotations.title
    link = make_link("/", canonical_text(scenario))
    yield "/* cowlab export c" + (f": {c_comment(title)}" if title else "") + "\n"
    yield " *\n * The scenario, one command per step:\n"
    for k, cmd in enumerate(scenario.commands, 1):
        yield f" * {k:4d}  {c_comment(format_command(cmd))}\n"
    for remark in scenario.remarks:
        yield f" *       (after step {remark.at}) {c_comment(remark.text)}\n"
    yield " *\n * On any cowlab server: " + c_comment(link) + "\n"
    yield (
        " *\n"
        " * Build and run (glibc and the kernel's UAPI headers only):\n"
        " *     cc -O2 -Wall -Werror -o scenario scenario.c && ./scenario [TIMEOUT_SECONDS]\n"
        " * It prints `observed STEP VALUE` for what each step let a program see, then TAP\n"
        " * against what the era of the running kernel (uname -r) expects, then\n"
        " * `# behaves like: ERA ...`: every era whose expectations equal what this kernel did.\n"
        " * Steps this kernel cannot run are skipped with the reason, never guessed.\n"
        " */\n"
    )


def program(scenario: c.Scenario) -> str:
    """The C program of ``scenario``: deterministic, self-contained, C11 with GNU extensions
    that gcc and clang both accept; it builds with ``cc -O2 -Wall -Werror``. Raises
    `ExportRefused` for a scenario no program can be written for (one without commands)."""
    if not scenario.commands:
        raise ExportRefused("the scenario has no command: there is nothing for a program to run")
    steps, names = plan(scenario)
    devices, named_swap = _variants(scenario)
    eras = list(POLICIES.values())
    tables: list[list[_Expectations]] = []
    quiet: set[int] = set()
    for device in devices:
        row = []
        for era in eras:
            trace = replay(_on_device(scenario, device), era)
            row.append(_Expectations(_expected(trace), _expected_frames(trace), _said(trace)))
            for k, cmd in enumerate(scenario.commands, 1):
                if isinstance(cmd, c.Swapout) and _file_pageout(trace.steps[k - 1], cmd):
                    quiet.add(k)
        tables.append(row)
    checked = sorted(
        {k for row in tables for ex in row for k in (*ex.values, *ex.frames)}
        | {s.code.index for s in steps if s.read}
    )
    values = sorted(
        {
            v
            for row in tables
            for ex in row
            for t in (ex.values, ex.frames, ex.said)
            for v in t.values()
        }
        | {""}
    )
    index = {v: i for i, v in enumerate(values)}
    rt = runtime()
    used = _features(steps)
    steps = [_without_unused(step, used) for step in steps]
    n = len(steps)
    out: list[str] = [*_header(scenario), trim(rt.prelude, used)]
    out.append(
        "/* ---- the scenario's dimensions ---- */\n"
        f"enum {{ NSTEPS = {n}, NPAGES = {len(names.pages)}, NNAMES = {len(names.names)}, "
        f"NERAS = {len(eras)}, NVARIANTS = {len(devices)}, NCHECKED = {len(checked)} }};\n"
        f"enum {{ NEEDS = {len(NEEDS)}, "
        + ", ".join(f"NEED_{need.upper()} = {bit}" for need, bit in NEED.items())
        + " };\n"
        + "enum { "
        + ", ".join(f"NEED_AT_{need.upper()} = {i}" for i, need in enumerate(NEEDS))
        + " };\n"
    )
    out.append(trim(rt.runtime, used))
    out.append("/* ---- the scenario: what each process does at each step ---- */\n")
    out.append("static const char *const names[NNAMES + 1] = {\n")
    out.extend(f"\t{c_string(name)},\n" for name in names.names)
    out.append('\t"",\n};\n\n')
    for step in steps:
        if step.body is not None:
            out.append(step_function(step.code.index, step.code.command, step.body) + "\n\n")
    out.append("static const struct step steps[NSTEPS + 1] = {\n\t{ 0 },\n")
    for step in steps:
        k = step.code.index
        impossible = c_string(step.code.impossible) if step.code.impossible else "NULL"
        run = f"step_{k}" if step.body is not None else "NULL"
        out.append(
            f"\t{{ {c_string(step.code.command)}, {step.kind}, {step.proc}, {step.ref}, "
            f"{step.file}, {int(step.readonly)}, {int(step.read)}, {int(k in quiet)}, "
            f"{step.needs}, {step.take}, {impossible}, {run} }},\n"
        )
    out.append("};\n\n")
    out.append("static const struct era eras[NERAS] = {\n")
    for era in eras:
        since = era.since[0] * 1000 + era.since[1]
        until = -1 if era.until is None else era.until[0] * 1000 + era.until[1]
        out.append(f"\t{{ {c_string(era.id)}, {int(era.merged)}, {since}, {until} }},\n")
    out.append("};\n\n/* Expected observations: indices into V. */\n")
    out.append("static const char *const V[] = {\n")
    out.extend(f"\t{c_string(v)},\n" for v in values)
    out.append("};\n")
    for table, field in (("expected", "values"), ("expected_frame", "frames"), ("said", "said")):
        out.append(f"static const unsigned short {table}[NVARIANTS][NERAS][NSTEPS + 1] = {{\n")
        for device, row in zip(devices, tables, strict=True):
            out.append(f"\t{{ /* swap device: {device} */\n")
            for era, ex in zip(eras, row, strict=True):
                expected: dict[int, str] = getattr(ex, field)
                cells = ", ".join(str(index[expected.get(k, "")]) for k in range(n + 1))
                out.append(f"\t\t{{ {cells} }}, /* {c_comment(era.id)} */\n")
            out.append("\t},\n")
        out.append("};\n")
    marks = ", ".join("1" if k in checked else "0" for k in range(n + 1))
    out.append(f"static const unsigned char checked[NSTEPS + 1] = {{ {marks} }};\n")
    out.append(f"static const char NAMED_SWAP[] = {c_string(named_swap)};\n")
    devices_c = ", ".join(c_string(d) for d in devices)
    out.append(f"static const char *const variant_devices[NVARIANTS] = {{ {devices_c} }};\n")
    out.append(trim(rt.main, used))
    return "".join(out)


# What a step needs of the kernel, for the feature whose code checks it (`runtime.FEATURES`).
_FEATURE_NEEDS = {
    "iouring": NEED["iouring"],
    "uffd": NEED["uffd_wp"],
    "gup": NEED["gup_test"],
    "softdirty": NEED["softdirty"],
    "forcewrite": NEED["forcewrite"],
}


def _features(steps: list[Step]) -> frozenset[str]:
    """The runtime's features the scenario's steps use: a helper of theirs a step calls, or
    the kernel facility a step needs (whose check lives with the feature)."""
    used = set()
    for feature, helpers in FEATURES.items():
        for step in steps:
            calls = step.body or ""
            if any(f"{h}(" in calls for h in helpers) or step.needs & _FEATURE_NEEDS.get(
                feature, 0
            ):
                used.add(feature)
    return frozenset(used)


def _without_unused(step: Step, used: frozenset[str]) -> Step:
    """A reference step whose step_K could only run for a ring, in a scenario that takes no
    ring: no ring ever holds the name, so step_K is never run (the coordinator answers)."""
    if step.body is None or "iouring" in used or "ring_" not in step.body:
        return step
    return dataclasses.replace(step, body=None)
