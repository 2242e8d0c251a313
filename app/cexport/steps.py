"""What the program does at each step: who performs the command, the C it runs, what it needs.

A process command becomes a small function ``step_K`` that the scenario process performing it
runs, calling a helper of `runtime.c` that makes the system call. The coordinator does the rest
itself: it declares the files, holds the pipes and the gup_test pins, and reads and releases
them. What a step needs of the kernel (swap, soft-dirty, io_uring, userfaultfd write-protect,
gup_test, /proc/self/mem writes) and the steps no program can perform follow the probe's rules
(`app.probe.executor.static_skip`), one step at a time: the program runs the steps before the
first it cannot, then skips.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from app.cexport.ctext import c_comment, c_string
from app.cexport.runtime import runtime
from engine import commands as c
from engine.machine import written_value
from engine.syntax import format_command, reference_names

# What a step may need of the kernel, in the order of the program's capability checks.
NEEDS = ("swap", "softdirty", "iouring", "uffd_wp", "gup_test", "forcewrite")
NEED = {name: 1 << i for i, name in enumerate(NEEDS)}

# Why no program can perform a step, on any kernel (the probe's reasons).
NO_PROGRAM = {
    "get": (
        "a FOLL_GET reference other than vmsplice cannot be held across steps from user space "
        "(gup_test only keeps long-term pins)"
    ),
    "short-pin": "gup_test can hold only FOLL_LONGTERM pins across steps",
    "pin-write": "gup_test cannot write through a pin (no device to DMA with)",
    "race": "the racy Dirty COW exploit is not run on a real kernel",
}
_EXIT_NOTE = (
    "/* The process answers, then _exit(0)s; the coordinator releases the pipes and pins it\n"
    " * handed over, and its parent (or the coordinator, once it is orphaned) reaps it with\n"
    " * waitpid(). */"
)


@dataclass(frozen=True, slots=True)
class StepCode:
    """The real code of one step: who performs it, its function, and the helpers it calls."""

    index: int
    command: str
    where: str  # "the coordinator" or "process P"
    function: str  # the step's C function, or a comment when no process runs code for it
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
class Step:
    """One row of the program's step table (`struct step` in runtime.c)."""

    code: StepCode
    kind: str  # K_FILE, K_MMAP, K_FORK, K_EXIT, K_TAKE, K_REF_*, K_SWAPOUT or K_PROC
    proc: int = -1  # name id of the process that performs it
    ref: int = -1  # name id of the reference it takes or uses, or of a fork's child
    file: int = -1  # name id of the file it declares or maps
    readonly: bool = False  # a file mapped `ro` is opened O_RDONLY
    read: bool = False
    needs: int = 0  # NEED bits
    take: str = "TAKE_NONE"
    body: str | None = None  # the statements of step_K, or None when no process runs code


@dataclass
class Names:
    """Ids of the names (processes, references and files share one namespace) and pages."""

    names: dict[str, int] = dataclasses.field(default_factory=dict)
    pages: dict[str, int] = dataclasses.field(default_factory=dict)

    def name(self, name: str) -> int:
        return self.names.setdefault(name, len(self.names))

    def page(self, page: str) -> str:
        """The page's id as C, its name beside it."""
        return f"{self.pages.setdefault(page, len(self.pages))} /* {page} */"


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a process command does: the calls of its step_K and what the coordinator adds."""

    calls: tuple[str, ...]
    kind: str = "K_PROC"
    needs: int = 0
    take: str = "TAKE_NONE"
    ref: int = -1
    impossible: str | None = None


class _Planner:
    def __init__(self, scenario: c.Scenario) -> None:
        self.scenario = scenario
        self.names = Names()
        self.declared: set[str] = set()  # files declared so far
        self.takes: dict[str, c.TakeRef] = {}  # reference name -> its latest take
        self.ring_names: set[str] = set()  # reference names an io_uring take ever used
        # (process, page) whose pageout needs no swap: a shared file's page, a hugetlb page
        self.no_swap_needed: set[tuple[str, str]] = set()
        self.slot = 0  # the next page-sized slot of the scenario's address range
        self.huge_slot = 0  # the next 2 MiB slot, for huge pages

    def steps(self) -> list[Step]:
        commands = self.scenario.commands
        ref_names = reference_names(commands)
        return [
            self._step(k, cmd, ref_name)
            for k, (cmd, ref_name) in enumerate(zip(commands, ref_names, strict=True), 1)
        ]

    def _step(self, k: int, cmd: c.Command, ref_name: str | None) -> Step:
        text = format_command(cmd)
        self._track_no_swap_needed(cmd)
        if isinstance(cmd, c.FileDecl):
            self.declared.add(cmd.name)
            name = self.names.name(cmd.name)
            decl = f"file_decl(r, {name} /* {cmd.name} */, {c_string(cmd.value)});"
            code = _code(k, text, "the coordinator", decl)
            return Step(code, "K_FILE", file=name, body=decl)
        if isinstance(cmd, c.RefRead | c.RefWrite | c.RefRelease):
            return self._reference(k, text, cmd)
        proc = self.names.name(cmd.proc)
        todo = self._plan(k, cmd, ref_name)
        impossible = None if todo.impossible is None else f"{todo.impossible} (needed by `{text}`)"
        body = "\n\t".join(todo.calls) if todo.calls else None
        code = _code(k, text, f"process {cmd.proc}", body, impossible, exits=todo.kind == "K_EXIT")
        mapped = isinstance(cmd, c.Mmap) and cmd.file is not None
        return Step(
            code,
            todo.kind,
            proc,
            todo.ref,
            file=self.names.name(cmd.file) if isinstance(cmd, c.Mmap) and cmd.file else -1,
            readonly=mapped and isinstance(cmd, c.Mmap) and cmd.readonly,
            read=isinstance(cmd, c.Read),
            needs=todo.needs,
            take=todo.take,
            body=body,
        )

    def _track_no_swap_needed(self, cmd: c.Command) -> None:
        """Which (process, page) a pageout needs no swap for (as the probe's `static_skip`
        decides): a shared file's page-cache page, unmapped without a swap device, and a
        hugetlb page, which MADV_PAGEOUT refuses (-EINVAL) with or without one."""
        shared = self.no_swap_needed
        if isinstance(cmd, c.Mmap):
            for page in cmd.pages:
                if (cmd.file is not None and cmd.shared) or cmd.backing == "hugetlb":
                    shared.add((cmd.proc, page))
                else:
                    shared.discard((cmd.proc, page))
        elif isinstance(cmd, c.Munmap):
            shared.discard((cmd.proc, cmd.page))
        elif isinstance(cmd, c.Fork):
            shared.update({(cmd.child, page) for proc, page in set(shared) if proc == cmd.proc})
        elif isinstance(cmd, c.Exit):
            shared.difference_update({key for key in shared if key[0] == cmd.proc})

    def _plan(self, k: int, cmd: c.Command, ref_name: str | None) -> _Plan:
        page = self.names.page
        if isinstance(cmd, c.Mmap):
            return self._mmap(cmd)
        if isinstance(cmd, c.TakeRef):
            assert ref_name is not None
            return self._take(cmd, ref_name)
        if isinstance(cmd, c.Fork):
            return _Plan(("do_fork(r);",), "K_FORK", ref=self.names.name(cmd.child))
        if isinstance(cmd, c.Exit):
            return _Plan((), "K_EXIT")
        if isinstance(cmd, c.ClearSoftdirty):
            return _Plan(("do_clear_softdirty(r);",), needs=NEED["softdirty"])
        if isinstance(cmd, c.Read):
            return _Plan((f"do_read(r, {page(cmd.page)});",))
        if isinstance(cmd, c.Write):
            value = c_string(written_value(cmd, k).text)
            return _Plan((f"do_write(r, {page(cmd.page)}, {value});",))
        if isinstance(cmd, c.ForceWrite):
            call = f"do_forcewrite(r, {page(cmd.page)}, {c_string(cmd.value)});"
            impossible = NO_PROGRAM["race"] if cmd.race else None
            return _Plan((call,), needs=NEED["forcewrite"], impossible=impossible)
        if isinstance(cmd, c.Munmap):
            return _Plan((f"do_munmap(r, {page(cmd.page)});",))
        if isinstance(cmd, c.Dontneed):
            return _Plan((f"do_madvise(r, {page(cmd.page)}, MADV_DONTNEED);",))
        if isinstance(cmd, c.Dontfork):
            advice = "MADV_DOFORK" if cmd.dofork else "MADV_DONTFORK"
            return _Plan((f"do_madvise(r, {page(cmd.page)}, {advice});",))
        if isinstance(cmd, c.Swapout):
            # A shared file's page leaves for its file, not for swap.
            needs = 0 if (cmd.proc, cmd.page) in self.no_swap_needed else NEED["swap"]
            call = f"do_madvise(r, {page(cmd.page)}, MADV_PAGEOUT);"
            return _Plan((call,), "K_SWAPOUT", needs=needs)
        if isinstance(cmd, c.PteMap):
            return _Plan((f"do_pte_map(r, {page(cmd.page)});",))
        if isinstance(cmd, c.Mprotect):
            return _Plan((f"do_mprotect(r, {page(cmd.page)}, {int(cmd.writable)});",))
        if isinstance(cmd, c.UffdWp):
            call = f"do_uffd_wp(r, {page(cmd.page)}, {int(cmd.on)});"
            return _Plan((call,), needs=NEED["uffd_wp"])
        raise AssertionError(f"no plan for {type(cmd).__name__}")

    def _mmap(self, cmd: c.Mmap) -> _Plan:
        if cmd.file is not None and cmd.file not in self.declared:
            # open() of a file that is not there: the coordinator answers ENOENT itself.
            return _Plan(("(void)r; /* the coordinator answers ENOENT: no such file */",), "K_MMAP")
        calls = []
        if cmd.file is None and cmd.backing != "base":
            # Each page its own 2 MiB huge page, in 2 MiB-aligned slots of their own.
            helper = "map_thp" if cmd.backing == "thp" else "map_hugetlb"
            for page in cmd.pages:
                calls.append(f"{helper}(r, {self.names.page(page)}, {self.huge_slot});")
                self.huge_slot += 1
            return _Plan(tuple(calls), "K_MMAP")
        for page in cmd.pages:
            where = f"{self.names.page(page)}, {self.slot}"
            if cmd.file is None:
                calls.append(f"map_anon(r, {where});")
            else:
                calls.append(f"map_file(r, {where}, {int(cmd.shared)}, {int(cmd.readonly)});")
            self.slot += 1
        return _Plan(tuple(calls), "K_MMAP")

    def _take(self, cmd: c.TakeRef, ref_name: str) -> _Plan:
        self.takes[ref_name] = cmd
        if cmd.kind == "iouring":
            self.ring_names.add(ref_name)
        ref = self.names.name(ref_name)
        page = self.names.page(cmd.page)
        if cmd.kind == "vmsplice":
            return _Plan((f"do_vmsplice(r, {page});",), "K_TAKE", take="TAKE_VMSPLICE", ref=ref)
        if cmd.kind == "iouring":
            call = f"do_iouring(r, {page}, {ref} /* {ref_name} */);"
            return _Plan((call,), "K_TAKE", NEED["iouring"], "TAKE_IOURING", ref)
        if cmd.kind == "pin" and cmd.longterm:
            call = f"do_pin(r, {page}, {int(cmd.write)}, {int(cmd.fast)});"
            return _Plan((call,), "K_TAKE", NEED["gup_test"], "TAKE_PIN", ref)
        reason = NO_PROGRAM["get" if cmd.kind == "get" else "short-pin"]
        return _Plan((), "K_TAKE", ref=ref, impossible=reason)

    def _reference(self, k: int, text: str, cmd: c.RefRead | c.RefWrite | c.RefRelease) -> Step:
        """The coordinator performs a reference command on a pipe or a pin it holds; the owner
        of an io_uring ring performs it there (``step_K`` is the ring's part)."""
        ref = self.names.name(cmd.ref)
        taken = self.takes.get(cmd.ref)
        label = f"{ref} /* {cmd.ref} */"
        impossible = None
        if isinstance(cmd, c.RefRead):
            kind, body = "K_REF_READ", f"ring_read(r, {label});"
            held_by_coordinator = {"vmsplice": "pipe_read", "pin": "gup_read"}
        elif isinstance(cmd, c.RefWrite):
            kind, body = "K_REF_WRITE", f"ring_write(r, {label}, {c_string(cmd.value)});"
            held_by_coordinator = {}
            if taken is not None and taken.kind == "pin" and taken.write:
                impossible = f"{NO_PROGRAM['pin-write']} (needed by `{text}`)"
        else:
            kind, body = "K_REF_RELEASE", f"ring_release(r, {label});"
            held_by_coordinator = {"pin": "gup_release"}
        read = isinstance(cmd, c.RefRead)
        if taken is not None and taken.kind == "iouring":
            code = _code(k, text, f"process {taken.proc}, which owns the ring", body, impossible)
            return Step(code, kind, ref=ref, read=read, body=body)
        if (
            read
            and taken is not None
            and taken.kind in held_by_coordinator
            and cmd.ref not in self.ring_names
        ):
            # Only a pipe or a pin can hold the name here: step_K reads it in the coordinator,
            # which hands it the fd it holds (`run_step`).
            reader = held_by_coordinator[taken.kind]
            body = f"{reader}(r, in_fd); /* {c_comment(cmd.ref)}: the fd the coordinator holds */"
            take = "TAKE_VMSPLICE" if taken.kind == "vmsplice" else "TAKE_PIN"
            code = _code(k, text, "the coordinator", body)
            return Step(code, kind, ref=ref, read=True, take=take, body=body)
        # The coordinator holds the pipe or the pin and does it all (`run_step` in the
        # program); step_K is still there for a ring that may hold the name at run time.
        helper = held_by_coordinator.get(taken.kind) if taken is not None else None
        held = {"vmsplice": "a pipe", "pin": "a gup_test pin"}.get(taken.kind if taken else "")
        if isinstance(cmd, c.RefWrite) and held:
            note = f"{held} is read-only: the write is refused (call fails)"
        elif held and helper:
            note = f"the coordinator holds {held}: {helper}()"
        else:
            note = "no such reference when the program reaches it: an error"
        code = StepCode(
            k,
            text,
            "the coordinator",
            f"/* step {k}: {c_comment(text)}: {note} */",
            (helper,) if helper else (),
            impossible,
        )
        return Step(code, kind, ref=ref, read=read, body=body)


def _code(
    k: int,
    text: str,
    where: str,
    body: str | None,
    impossible: str | None = None,
    *,
    exits: bool = False,
) -> StepCode:
    if exits:
        function = f"/* step {k}: {c_comment(text)} */\n{_EXIT_NOTE}"
    elif body is None:
        function = f"/* step {k}: {c_comment(text)}: {c_comment(impossible or 'nothing')} */"
    else:
        function = step_function(k, text, body)
    return StepCode(k, text, where, function, _helpers(body), impossible)


def _helpers(body: str | None) -> tuple[str, ...]:
    """The helpers ``body``'s statements call, in order."""
    if body is None:
        return ()
    calls = (line.split("(")[0] for line in body.split("\n\t") if not line.startswith("("))
    return tuple(dict.fromkeys(calls))


def step_function(k: int, text: str, body: str) -> str:
    return (
        f"/* step {k}: {c_comment(text)} */\n"
        f"static void step_{k}(struct reply *r)\n{{\n\t{body}\n}}"
    )


def plan(scenario: c.Scenario) -> tuple[list[Step], Names]:
    """Every step of ``scenario`` as the program performs it, and the ids of its names."""
    planner = _Planner(scenario)
    return planner.steps(), planner.names


def step_code(scenario: c.Scenario, index: int) -> StepCode:
    """The real code of step ``index`` (1-based) of ``scenario``, as the program runs it."""
    if not 1 <= index <= len(scenario.commands):
        raise IndexError(f"step {index} is not a command of this scenario")
    return plan(scenario)[0][index - 1].code
