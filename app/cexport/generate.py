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
import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources

# The probe's own rules, so that the program skips and compares exactly as the probe does:
# which pageouts neither side can observe, and which pageouts (of a shared file's page) need no
# swap.
from app.probe.compare import _file_pageout, sim_observations
from app.probe.executor import _track_shared_files
from app.views.links import make_link
from engine import commands as c
from engine.annotations import SwapDevice
from engine.machine import written_value
from engine.policies import POLICIES
from engine.syntax import canonical_text, format_command, reference_names
from engine.trace import Trace, replay

# What a step may need of the kernel, in the order of the program's capability checks.
NEEDS = ("swap", "softdirty", "iouring", "uffd_wp", "gup_test", "forcewrite")
NEED = {name: 1 << i for i, name in enumerate(NEEDS)}
SWAP_DEVICES: tuple[SwapDevice, ...] = ("file", "zram")


class ExportRefused(ValueError):
    """A scenario the generator cannot write a faithful program for; the message says why."""


# ------------------------------------------------------------------------------ C text
def c_string(text: str) -> str:
    """``text`` as a C string literal: printable ASCII as itself, every other byte of its UTF-8
    as an octal escape (three digits at most, so the next character cannot extend it), and
    `?` escaped so no trigraph can form."""
    out = ['"']
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\?':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    out.append('"')
    return "".join(out)


def c_comment(text: str) -> str:
    """``text`` safe inside a /* */ comment: no comment end, no comment start (-Wcomment), no
    control character."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text.replace("*/", "*\\/").replace("/*", "/\\*")


# ------------------------------------------------------------------------------ the runtime
@dataclass(frozen=True, slots=True)
class Runtime:
    """`runtime.c` cut where the scenario goes in, and its helpers (the functions that make
    the system calls, each after a ``/* @helper NAME */`` line) for the step view."""

    prelude: str  # includes and fallbacks for old headers
    runtime: str  # what every process knows, and the helpers
    main: str  # the coordinator
    helpers: dict[str, str]  # helper name -> its source (comment and function)
    calls: dict[str, tuple[str, ...]]  # helper name -> the helpers it calls, transitively


_HELPER = re.compile(r"^/\* @helper (\w+) \*/\n(.*?^\}\n)", re.MULTILINE | re.DOTALL)


@functools.cache
def runtime() -> Runtime:
    source = resources.files("app.cexport").joinpath("runtime.c").read_text(encoding="utf-8")
    prelude, rest = source.split("/* @generated dimensions */\n")
    part, main = rest.split("/* @generated scenario */\n")
    helpers = {m.group(1): m.group(2) for m in _HELPER.finditer(source)}
    direct = {
        name: tuple(other for other in helpers if other != name and f"{other}(" in body)
        for name, body in helpers.items()
    }

    def closure(name: str, seen: tuple[str, ...]) -> tuple[str, ...]:
        for callee in direct[name]:
            if callee not in seen:
                seen = closure(callee, (*seen, callee))
        return seen

    calls = {name: closure(name, ()) for name in helpers}
    return Runtime(prelude, part, main, helpers, calls)


# ------------------------------------------------------------------------------ the scenario
@dataclass(frozen=True, slots=True)
class StepCode:
    """The real code of one step: who performs it, its function, and the helpers it calls."""

    index: int
    command: str
    where: str  # "the coordinator" or "process P"
    function: str  # the step's C function (or a comment when the coordinator does it all)
    helpers: tuple[str, ...]
    impossible: str | None = None  # why no program can perform it, if so

    @property
    def helper_sources(self) -> tuple[tuple[str, str], ...]:
        """Each helper the step calls, then the helpers those call, with their sources."""
        rt = runtime()
        names = dict.fromkeys(n for h in self.helpers for n in (h, *rt.calls[h]))
        return tuple((name, rt.helpers[name].strip("\n")) for name in names)

    @property
    def text(self) -> str:
        """The whole snippet: the step's function, then each helper it calls."""
        parts = [self.function.strip("\n"), *(source for _, source in self.helper_sources)]
        return "\n\n".join(parts) + "\n"


@dataclass(frozen=True, slots=True)
class _Step:
    code: StepCode
    kind: str
    proc: int = -1
    ref: int = -1
    file: int = -1
    readonly: bool = False
    read: bool = False
    needs: int = 0
    take: str = "TAKE_NONE"
    body: str | None = None  # the statements of step_K, or None when no process runs code


@dataclass
class _Names:
    """Ids of the names (processes, references and files share one namespace) and pages."""

    names: dict[str, int] = dataclasses.field(default_factory=dict)
    pages: dict[str, int] = dataclasses.field(default_factory=dict)

    def name(self, name: str) -> int:
        return self.names.setdefault(name, len(self.names))

    def page(self, page: str) -> int:
        return self.pages.setdefault(page, len(self.pages))


def _page(names: _Names, page: str) -> str:
    return f"{names.page(page)} /* {page} */"


_TAKE_REASONS = {
    "get": (
        "a FOLL_GET reference other than vmsplice cannot be held across steps from user space "
        "(gup_test only keeps long-term pins)"
    ),
    "short-pin": "gup_test can hold only FOLL_LONGTERM pins across steps",
    "pin-write": "gup_test cannot write through a pin (no device to DMA with)",
    "race": "the racy Dirty COW exploit is not run on a real kernel",
}


def _steps(scenario: c.Scenario, names: _Names) -> list[_Step]:
    """Each command as the program performs it, with what it needs (as `executor.static_skip`
    decides, one step at a time: the program runs the steps before the first it cannot)."""
    ref_names = reference_names(scenario.commands)
    declared: set[str] = set()
    takes: dict[str, c.TakeRef] = {}
    shared_files: set[tuple[str, str]] = set()
    slot = 0
    out: list[_Step] = []
    for k, (cmd, ref_name) in enumerate(zip(scenario.commands, ref_names, strict=True), 1):
        text = format_command(cmd)
        _track_shared_files(shared_files, cmd)
        impossible: str | None = None
        if isinstance(cmd, c.FileDecl):
            declared.add(cmd.name)
            decl = f"file_decl(r, {names.name(cmd.name)} /* {cmd.name} */, {c_string(cmd.value)});"
            code = _code(k, text, "the coordinator", ["file_decl"], decl)
            step = _Step(code, "K_FILE", file=names.name(cmd.name), body=decl)
            out.append(step)
            continue
        if isinstance(cmd, c.RefRead | c.RefWrite | c.RefRelease):
            out.append(_ref_step(k, text, cmd, names, takes))
            continue
        proc = names.name(cmd.proc)
        where = f"process {cmd.proc}"
        kind, needs, take, ref = "K_PROC", 0, "TAKE_NONE", -1
        calls: list[str] = []
        if isinstance(cmd, c.Mmap):
            kind = "K_MMAP"
            pages = cmd.pages if cmd.file is None or cmd.file in declared else ()
            for page in pages:
                if cmd.file is None:
                    calls.append(f"map_anon(r, {_page(names, page)}, {slot});")
                else:
                    flags = f"{int(cmd.shared)}, {int(cmd.readonly)}"
                    calls.append(f"map_file(r, {_page(names, page)}, {slot}, {flags});")
                slot += 1
            if not pages:
                calls.append("(void)r; /* the coordinator answers ENOENT: no such file */")
        elif isinstance(cmd, c.Read):
            calls.append(f"do_read(r, {_page(names, cmd.page)});")
        elif isinstance(cmd, c.Write):
            value = written_value(cmd, k).text
            calls.append(f"do_write(r, {_page(names, cmd.page)}, {c_string(value)});")
        elif isinstance(cmd, c.ForceWrite):
            if cmd.race:
                impossible = _TAKE_REASONS["race"]
            needs = NEED["forcewrite"]
            calls.append(f"do_forcewrite(r, {_page(names, cmd.page)}, {c_string(cmd.value)});")
        elif isinstance(cmd, c.Fork):
            kind, ref = "K_FORK", names.name(cmd.child)
            calls.append("do_fork(r);")
        elif isinstance(cmd, c.Exit):
            kind = "K_EXIT"
        elif isinstance(cmd, c.Munmap):
            calls.append(f"do_munmap(r, {_page(names, cmd.page)});")
        elif isinstance(cmd, c.Dontneed):
            calls.append(f"do_madvise(r, {_page(names, cmd.page)}, MADV_DONTNEED);")
        elif isinstance(cmd, c.Dontfork):
            advice = "MADV_DOFORK" if cmd.dofork else "MADV_DONTFORK"
            calls.append(f"do_madvise(r, {_page(names, cmd.page)}, {advice});")
        elif isinstance(cmd, c.Swapout):
            kind = "K_SWAPOUT"
            needs = 0 if (cmd.proc, cmd.page) in shared_files else NEED["swap"]
            calls.append(f"do_madvise(r, {_page(names, cmd.page)}, MADV_PAGEOUT);")
        elif isinstance(cmd, c.Mprotect):
            calls.append(f"do_mprotect(r, {_page(names, cmd.page)}, {int(cmd.writable)});")
        elif isinstance(cmd, c.ClearSoftdirty):
            needs = NEED["softdirty"]
            calls.append("do_clear_softdirty(r);")
        elif isinstance(cmd, c.UffdWp):
            needs = NEED["uffd_wp"]
            calls.append(f"do_uffd_wp(r, {_page(names, cmd.page)}, {int(cmd.on)});")
        elif isinstance(cmd, c.TakeRef):
            assert ref_name is not None
            kind, ref = "K_TAKE", names.name(ref_name)
            takes[ref_name] = cmd
            page = _page(names, cmd.page)
            if cmd.kind == "vmsplice":
                take = "TAKE_VMSPLICE"
                calls.append(f"do_vmsplice(r, {page});")
            elif cmd.kind == "iouring":
                take, needs = "TAKE_IOURING", NEED["iouring"]
                calls.append(f"do_iouring(r, {page}, {ref} /* {ref_name} */);")
            elif cmd.kind == "pin" and cmd.longterm:
                take, needs = "TAKE_PIN", NEED["gup_test"]
                calls.append(f"do_pin(r, {page}, {int(cmd.write)}, {int(cmd.fast)});")
            else:
                impossible = _TAKE_REASONS["get" if cmd.kind == "get" else "short-pin"]
        if impossible is not None:
            impossible = f"{impossible} (needed by `{text}`)"
        body = "\n\t".join(calls) if calls else None
        code = _code(k, text, where, _helpers(calls), body, impossible)
        read = isinstance(cmd, c.Read)
        out.append(_Step(code, kind, proc, ref, read=read, needs=needs, take=take, body=body))
        if isinstance(cmd, c.Mmap) and cmd.file is not None:
            out[-1] = dataclasses.replace(out[-1], file=names.name(cmd.file), readonly=cmd.readonly)
    return out


def _ref_step(
    k: int,
    text: str,
    cmd: c.RefRead | c.RefWrite | c.RefRelease,
    names: _Names,
    takes: dict[str, c.TakeRef],
) -> _Step:
    """A reference command: the coordinator performs it on a pipe or a pin it holds; the owner
    of an io_uring ring performs it there (`step_K` is the ring's part)."""
    ref = names.name(cmd.ref)
    taken = takes.get(cmd.ref)
    impossible = None
    if isinstance(cmd, c.RefRead):
        kind, body = "K_REF_READ", f"ring_read(r, {ref} /* {cmd.ref} */);"
        other = {"vmsplice": "pipe_read", "pin": "gup_read"}
    elif isinstance(cmd, c.RefWrite):
        kind = "K_REF_WRITE"
        body = f"ring_write(r, {ref} /* {cmd.ref} */, {c_string(cmd.value)});"
        other = {}
        if taken is not None and taken.kind == "pin" and taken.write:
            impossible = f"{_TAKE_REASONS['pin-write']} (needed by `{text}`)"
    else:
        kind, body = "K_REF_RELEASE", f"ring_release(r, {ref} /* {cmd.ref} */);"
        other = {"pin": "gup_release"}
    if taken is not None and taken.kind == "iouring":
        where = f"process {taken.proc}, which owns the ring"
        code = _code(k, text, where, [body.split("(")[0]], body, impossible)
    else:
        # The coordinator holds the pipe or the pin: it performs the command itself (`run_step`
        # in the program); step_K is there for a ring that may hold the name at run time.
        helper = other.get(taken.kind) if taken is not None else None
        held = {"vmsplice": "a pipe", "pin": "a gup_test pin"}.get(taken.kind if taken else "")
        if isinstance(cmd, c.RefWrite) and held:
            note = f"{held} is read-only: the write is refused (call fails)"
        elif held and helper:
            note = f"the coordinator holds {held}: {helper}()"
        else:
            note = "no such reference when the program reaches it: an error"
        code = _code(k, text, "the coordinator", [helper] if helper else [], None, impossible)
        code = dataclasses.replace(code, function=f"/* step {k}: {c_comment(text)}: {note} */")
    return _Step(code, kind, ref=ref, read=isinstance(cmd, c.RefRead), body=body)


def _helpers(calls: Sequence[str]) -> list[str]:
    return [call.split("(")[0] for call in calls if "(" in call and not call.startswith("(")]


def _code(
    k: int,
    text: str,
    where: str,
    helpers: Sequence[str],
    body: str | None = None,
    impossible: str | None = None,
) -> StepCode:
    if body is None and text.endswith(" exit"):
        function = (
            f"/* step {k}: {c_comment(text)} */\n"
            "/* The process answers, then _exit(0)s; the coordinator releases the pipes and\n"
            " * pins it handed over, and its parent (or the coordinator, once it is orphaned)\n"
            " * reaps it with waitpid(). */"
        )
    elif body is None:
        function = f"/* step {k}: {c_comment(text)}: {c_comment(impossible or 'nothing')} */"
    else:
        function = _function(k, text, body)
    return StepCode(k, text, where, function, tuple(dict.fromkeys(helpers)), impossible)


def _function(k: int, text: str, body: str) -> str:
    return (
        f"/* step {k}: {c_comment(text)} */\n"
        f"static void step_{k}(struct reply *r)\n{{\n\t{body}\n}}"
    )


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
    names = _Names()
    steps = _steps(scenario, names)
    devices, named_swap = _variants(scenario)
    eras = list(POLICIES.values())
    tables: list[list[dict[int, str]]] = []
    quiet: set[int] = set()
    for device in devices:
        row = []
        for era in eras:
            trace = replay(_on_device(scenario, device), era)
            row.append(_expected(trace))
            for k, cmd in enumerate(scenario.commands, 1):
                if isinstance(cmd, c.Swapout) and _file_pageout(trace.steps[k - 1], cmd):
                    quiet.add(k)
        tables.append(row)
    checked = sorted(
        {k for row in tables for expected in row for k in expected}
        | {s.code.index for s in steps if s.read}
    )
    values = sorted({v for row in tables for expected in row for v in expected.values()} | {""})
    index = {v: i for i, v in enumerate(values)}
    rt = runtime()
    n = len(steps)
    out: list[str] = [*_header(scenario), rt.prelude]
    out.append(
        "/* ---- the scenario's dimensions ---- */\n"
        f"enum {{ NSTEPS = {n}, NPAGES = {len(names.pages)}, NNAMES = {len(names.names)}, "
        f"NERAS = {len(eras)}, NVARIANTS = {len(devices)}, NCHECKED = {len(checked)} }};\n"
        f"enum {{ NEEDS = {len(NEEDS)}, "
        + ", ".join(f"NEED_{need.upper()} = {bit}" for need, bit in NEED.items())
        + " };\n"
    )
    out.append(rt.runtime)
    out.append("/* ---- the scenario: what each process does at each step ---- */\n")
    out.append("static const char *const names[NNAMES + 1] = {\n")
    out.extend(f"\t{c_string(name)},\n" for name in names.names)
    out.append('\t"",\n};\n\n')
    for step in steps:
        if step.body is not None:
            out.append(_function(step.code.index, step.code.command, step.body) + "\n\n")
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
    out.append("static const unsigned short expected[NVARIANTS][NERAS][NSTEPS + 1] = {\n")
    for device, row in zip(devices, tables, strict=True):
        out.append(f"\t{{ /* swap device: {device} */\n")
        for era, expected in zip(eras, row, strict=True):
            cells = ", ".join(str(index[expected.get(k, "")]) for k in range(n + 1))
            out.append(f"\t\t{{ {cells} }}, /* {c_comment(era.id)} */\n")
        out.append("\t},\n")
    out.append("};\n")
    marks = ", ".join("1" if k in checked else "0" for k in range(n + 1))
    out.append(f"static const unsigned char checked[NSTEPS + 1] = {{ {marks} }};\n")
    out.append(f"static const char NAMED_SWAP[] = {c_string(named_swap)};\n")
    devices_c = ", ".join(c_string(d) for d in devices)
    out.append(f"static const char *const variant_devices[NVARIANTS] = {{ {devices_c} }};\n")
    out.append(rt.main)
    return "".join(out)


def step_code(scenario: c.Scenario, index: int) -> StepCode:
    """The real code of step ``index`` (1-based) of ``scenario``, as `program` writes it."""
    if not 1 <= index <= len(scenario.commands):
        raise IndexError(f"step {index} is not a command of this scenario")
    return _steps(scenario, _Names())[index - 1].code
