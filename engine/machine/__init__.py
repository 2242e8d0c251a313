"""The mechanics every era shares: page tables, counters, faults, fork, GUP, swap, freeing.

`apply(state, command, policy, step)` performs one command and returns the new state, the
events it produced and, for reads, the value observed. The package follows the kernel's seams:

- `core`: the step's working copy of the state, refcount/mapcount accounting, freeing;
- `faults`: read, write and unshare faults and swap-in (do_wp_page, do_swap_page);
- `gup`: get_user_pages/pin_user_pages, the references they take, /proc/PID/mem;
- `fork`: dup_mmap and copy_page_range;
- `swap`: swap-out (shrink_folio_list, try_to_unmap_one);
- `syscalls`: mmap, munmap, exit, madvise, mprotect, clear_refs, userfaultfd.

Wherever the kernel's behaviour depends on the era the machine asks the policy
(`engine.policies`) and records the `Decision` it got; everything else is the same in every era
and follows §1.6 and §8 of `shared/kernel-cow-semantics.md`.

A command the kernel would refuse or punish (writing an unmapped page, `R write` through a
read-only reference, a process that does not exist) is a recorded step — SIGSEGV, -EFAULT or an
error event — and never an exception: the state stays consistent. A command refused before its
first change leaves the state exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from engine import commands as c
from engine.annotations import SwapDevice
from engine.events import Event
from engine.machine.core import Abort, written_value
from engine.machine.fork import Fork
from engine.machine.gup import Gup
from engine.machine.swap import Swap
from engine.machine.syscalls import Syscalls
from engine.policies import Policy
from engine.state import State, Value

__all__ = ["StepResult", "apply", "written_value"]


class StepResult(NamedTuple):
    state: State
    events: tuple[Event, ...]
    observed: Value | None


class Machine(Syscalls, Gup, Fork, Swap):
    """Every kernel path of the package on one step's working state."""

    def run(self, command: c.Command) -> None:
        handler = _HANDLERS[type(command)]
        # try/except costs nothing until something is raised; `contextlib.suppress` is a
        # context manager made and entered in Python for every command of every replay.
        try:  # noqa: SIM105
            handler(self, command)
        except Abort:
            pass  # the refusal is already recorded as an event; the step simply ends there


# One handler per command class, looked up once rather than by name on every step.
_HANDLERS: dict[type, Callable[[Machine, Any], None]] = {
    cls: getattr(Machine, "do_" + cls.__name__)
    for cls in (c.FileDecl, c.RefRead, c.RefWrite, c.RefRelease, *c.PROC_COMMANDS)
}


def apply(
    state: State,
    command: c.Command,
    policy: Policy,
    step: int,
    ref_name: str | None = None,
    *,
    swap_device: SwapDevice = "file",
) -> StepResult:
    """Perform one command. ``ref_name`` is the name a reference take gets when the command
    has no `as R`: the parser's `reference_names`, so text and engine always agree.
    ``swap_device`` is the scenario's `#swap` annotation (DESIGN.md §10)."""
    machine = Machine(state, policy, step, ref_name, swap_device)
    machine.run(command)
    return StepResult(machine.freeze(), tuple(machine.events), machine.observed)
