"""Compare what a scenario observes on this kernel with what the simulator predicts for it.

The kernel's version picks the policy (`capabilities.policy_for`); the scenario runs once on the
kernel (`isolate.run_isolated`) and once in the simulator under that policy (`engine.trace`).
Compared are the *observations*: every `P read a` / `R read` (the value, or the refusal:
SIGSEGV, a failing call, no such process or reference), and every other step at which either
side reports something a program can see: SIGSEGV, a system call failing, a userfaultfd
write-protect fault delivered to the monitor. Internal state — which
frame, which counter — is the simulator's explanation, not something the kernel shows, so it is
not compared. The simulator's text is the expected text; a never-written page reads "0" on both
sides (the executor maps NUL bytes to "0").
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from app.probe import capabilities
from app.probe.executor import KernelRun, KernelStep
from app.probe.isolate import run_isolated
from engine import commands as c
from engine.annotations import SwapDevice
from engine.presets import PRESETS
from engine.state import ZERO_PFN
from engine.syntax import parse
from engine.trace import Step, Trace, replay

Runner = Callable[[c.Scenario, float], KernelRun]
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Observation:
    step: int
    command: str
    value: str  # what was read, or SIGSEGV / EFAULT / error / "userfault ×n"

    def to_json(self) -> dict[str, object]:
        return {"step": self.step, "command": self.command, "value": self.value}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    preset: str  # the preset's name, or the file's name for a scenario file
    title: str
    agree: bool | None  # None when skipped
    kernel_observed: tuple[Observation, ...]
    sim_observed: tuple[Observation, ...]
    skipped: str | None = None

    @property
    def status(self) -> str:
        if self.skipped is not None:
            return "skipped"
        return "agree" if self.agree else "disagree"

    @property
    def differing_steps(self) -> tuple[int, ...]:
        sim = {(o.step, o.value) for o in self.sim_observed}
        kernel = {(o.step, o.value) for o in self.kernel_observed}
        return tuple(sorted({step for step, _ in sim ^ kernel}))

    def by_step(self, missing: str) -> list[tuple[int, str, str, str]]:
        """(step, command, what the kernel saw, what the simulator predicts) for every step
        either side observed something at, in step order; several observations of one step are
        joined with " + ", none is ``missing``."""
        kernel: dict[int, list[str]] = {}
        sim: dict[int, list[str]] = {}
        commands: dict[int, str] = {}
        for side, observed in ((kernel, self.kernel_observed), (sim, self.sim_observed)):
            for o in observed:
                side.setdefault(o.step, []).append(o.value)
                commands[o.step] = o.command
        return [
            (
                step,
                commands[step],
                " + ".join(kernel.get(step, [missing])),
                " + ".join(sim.get(step, [missing])),
            )
            for step in sorted(commands)
        ]

    def to_json(self) -> dict[str, object]:
        return {
            "preset": self.preset,
            "title": self.title,
            "agree": self.agree,
            "kernel_observed": [o.to_json() for o in self.kernel_observed],
            "sim_observed": [o.to_json() for o in self.sim_observed],
            "skipped": self.skipped,
        }


@dataclass(frozen=True, slots=True)
class ProbeReport:
    kernel: str
    policy: str
    results: tuple[ProbeResult, ...]
    swap: str = "no swap configured"  # `capabilities.describe_swap()`: the device swap-outs use

    @property
    def ok(self) -> bool:
        """Nothing disagrees (skips are not failures: the kernel could not say)."""
        return all(r.agree is not False for r in self.results)

    def to_json(self) -> dict[str, object]:
        return {
            "kernel": self.kernel,
            "policy": self.policy,
            "swap": self.swap,
            "results": [r.to_json() for r in self.results],
        }


# What a program sees when the kernel refuses: the simulator's refusal events and the
# executor's outcomes, in one vocabulary. Any errno is "call fails": the simulator names one
# kind of failure (-EFAULT, -EACCES … all refuse with an "efault" event), the kernel the exact
# errno, which stays visible in the kernel step's outcome.
_SIM_REFUSALS = {"segv": "SIGSEGV", "efault": "call fails", "error": "error"}


def _sim_refusal(step: Step) -> str | None:
    for event in step.events:
        if event.kind in _SIM_REFUSALS:
            return _SIM_REFUSALS[event.kind]
    return None


def _kernel_refusal(step: KernelStep) -> str | None:
    if step.outcome == "segv":
        return "SIGSEGV"
    if step.outcome == "refused" or re.fullmatch(r"error: E[A-Z0-9]+", step.outcome):
        # "refused": a write through a pipe or a R/O pin, which no interface offers.
        return "call fails"
    if step.outcome.startswith("error"):
        return "error"
    return None


def _is_read(cmd: c.Command | None) -> bool:
    return isinstance(cmd, c.Read | c.RefRead)


def _file_pageout(before: Step, cmd: c.Command | None) -> bool:
    """Whether ``cmd`` pages out a page of a file mapping that holds no anonymous page.

    Neither side can say what happened there: the kernel's reclaim unmaps a page-cache page
    (the next pageout finds no PTE, and pagemap cannot tell a dropped page from one never
    touched), while the simulator pages out anonymous pages only and keeps the mapping. Such
    steps are compared on neither side: what follows (the next read faults the same page-cache
    contents back in) still is."""
    if not isinstance(cmd, c.Swapout):
        return False
    proc = before.state.procs.get(cmd.proc)
    vma = proc.vmas.get(cmd.page) if proc is not None else None
    if vma is None or vma.file is None:
        return False
    pte = proc.ptes.get(cmd.page) if proc is not None else None
    if pte is None or pte.swap_slot is not None:
        return pte is None
    return pte.pfn is None or before.state.frames[pte.pfn].kind != "anon"


def _sim_pageout(before: Step, step: Step) -> str | None:
    """What the simulator's MADV_PAGEOUT left behind, in the kernel's pagemap terms (not for a
    page of a file mapping, `_file_pageout`)."""
    cmd = step.command
    if not isinstance(cmd, c.Swapout) or _sim_refusal(step) is not None:
        return None
    if _file_pageout(before, cmd):
        return None
    proc = step.state.procs.get(cmd.proc)
    pte = proc.ptes.get(cmd.page) if proc is not None else None
    if pte is None:
        return "nothing to page out"
    if pte.pmd and pte.pfn == ZERO_PFN:
        # pagemap_pmd_range flags the huge zero page PM_FILE (it is no anonymous page), so the
        # kernel side says nothing of this pageout, as for a page-cache page: nor do we.
        return None
    return "swapped out" if pte.swap_slot is not None else "stays resident"


def _sim_frame(before: Step, step: Step) -> str | None:
    """What a store did to the frame behind its page in the simulator, in the words of
    `app.probe.worker.frame_change` ("new", "kept", "replaced")."""
    cmd = step.command
    if not isinstance(cmd, c.Write) or _sim_refusal(step) is not None:
        return None
    old_proc, new_proc = before.state.procs.get(cmd.proc), step.state.procs.get(cmd.proc)
    old = old_proc.ptes.get(cmd.page) if old_proc is not None else None
    new = new_proc.ptes.get(cmd.page) if new_proc is not None else None
    if new is None or new.pfn is None:
        return None
    if old is None or old.pfn is None:
        return "new"
    return "kept" if old.pfn == new.pfn else "replaced"


def sim_observations(
    trace: Trace, upto: int | None = None, *, frames: bool = False
) -> tuple[Observation, ...]:
    """The simulator's observations; with ``frames``, also what each store did to the frame
    behind its page (kept, replaced by a copy, new), which the kernel shows root in pagemap."""
    out: list[Observation] = []
    for before, step in itertools.pairwise(trace.steps[: None if upto is None else upto + 1]):
        refusal = _sim_refusal(step)
        faults = sum(1 for e in step.events if e.kind == "userfault")
        pageout = _sim_pageout(before, step)
        if _is_read(step.command):
            value = step.observed.text if step.observed is not None else (refusal or "nothing")
            out.append(Observation(step.index, step.text, value))
        elif pageout is not None:
            out.append(Observation(step.index, step.text, pageout))
        elif refusal is not None:
            out.append(Observation(step.index, step.text, refusal))
        if faults:
            out.append(Observation(step.index, step.text, f"userfault ×{faults}"))
        frame = _sim_frame(before, step) if frames else None
        if frame is not None:
            out.append(Observation(step.index, step.text, f"frame {frame}"))
    return tuple(out)


def kernel_observations(
    run: KernelRun, scenario: c.Scenario, trace: Trace | None = None, *, frames: bool = False
) -> tuple[Observation, ...]:
    """The kernel's observations; with the simulator's ``trace``, a pageout of a file
    mapping's page says nothing (`_file_pageout`), as on the simulator's side."""
    out: list[Observation] = []
    for step in run.steps:
        cmd = scenario.commands[step.index - 1]
        refusal = _kernel_refusal(step)
        file_pageout = trace is not None and _file_pageout(trace.steps[step.index - 1], cmd)
        if _is_read(cmd) or (
            isinstance(cmd, c.Swapout) and step.value is not None and not file_pageout
        ):
            value = step.value if step.value is not None else (refusal or "nothing")
            out.append(Observation(step.index, step.command, value))
        elif refusal is not None:
            out.append(Observation(step.index, step.command, refusal))
        if step.userfaults:
            out.append(Observation(step.index, step.command, f"userfault ×{step.userfaults}"))
        if frames and step.frame is not None:
            out.append(Observation(step.index, step.command, f"frame {step.frame}"))
    return tuple(out)


def probe_scenario(
    scenario: c.Scenario,
    *,
    name: str,
    title: str = "",
    policy: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    runner: Runner | None = None,
    swap: SwapDevice | Literal["detect"] | None = "detect",
    frames: bool = False,
) -> ProbeResult:
    """Run one scenario on the kernel (``runner``, by default `run_isolated`) and in the
    simulator; compare their observations. ``swap`` is the machine's swap device (None: no
    swap), read from /proc/swaps unless given: a scenario that pages out runs in the
    simulator on that device, and is skipped when its `#swap` line names another. With
    ``frames``, what each store did to its frame (kept, replaced by a copy, new) is compared
    too, at the stores where the kernel showed it (root reads PFNs in pagemap)."""
    policy = policy or capabilities.policy_for(capabilities.kernel_release())
    runner = runner or run_isolated
    device = capabilities.swap_device() if swap == "detect" else swap
    mismatch = swap_mismatch(scenario, device)
    if mismatch is not None:
        return ProbeResult(name, title, None, (), (), mismatch)
    trace = replay(on_swap_device(scenario, device), policy)
    run = runner(scenario, timeout)
    # Frames are compared where the kernel could show them (as root), on both sides.
    shown = {s.index for s in run.steps if s.frame is not None} if frames else set()
    kernel = kernel_observations(run, scenario, trace, frames=frames)
    return verdict(name, title, trace, kernel, len(run.steps), run.skipped, frames, shown)


def on_swap_device(scenario: c.Scenario, device: SwapDevice | None) -> c.Scenario:
    """The scenario the simulator replays on a machine that swaps to ``device``.

    A scenario that names no device swaps to the one the kernel will use. Only the simulator's
    copy may carry it: a runner prints the scenario (`format_scenario`), and annotations that no
    `#` line spells cannot be printed."""
    if device is None or device == scenario.annotations.swap:
        return scenario
    annotations = dataclasses.replace(scenario.annotations, swap=device)
    return dataclasses.replace(scenario, annotations=annotations)


def verdict(
    name: str,
    title: str,
    trace: Trace,
    kernel: tuple[Observation, ...],
    ran: int,
    skipped: str | None,
    frames: bool = False,
    shown: set[int] | frozenset[int] = frozenset(),
) -> ProbeResult:
    """Compare what the kernel showed over its first ``ran`` steps (all of them unless
    ``skipped`` says why not) with what the simulator's ``trace`` predicts; with ``frames``,
    frames are compared at the ``shown`` steps only."""
    sim = _frames_at(sim_observations(trace, frames=frames), set(shown))
    if skipped is not None:
        partial = _frames_at(sim_observations(trace, upto=ran, frames=frames), set(shown))
        return ProbeResult(name, title, None, kernel, partial, skipped)
    declined = _declined_pageout(kernel, sim)
    if declined is not None:
        return ProbeResult(name, title, None, kernel, sim, declined)
    agree = sorted((o.step, o.value) for o in kernel) == sorted((o.step, o.value) for o in sim)
    return ProbeResult(name, title, agree, kernel, sim)


def _frames_at(observed: tuple[Observation, ...], steps: set[int]) -> tuple[Observation, ...]:
    return tuple(o for o in observed if not o.value.startswith("frame ") or o.step in steps)


def swap_mismatch(scenario: c.Scenario, device: SwapDevice | None) -> str | None:
    named = any(r.text.split()[:1] == ["#swap"] for r in scenario.remarks)
    pages_out = any(isinstance(cmd, c.Swapout) for cmd in scenario.commands)
    if not (named and pages_out and device is not None) or device == scenario.annotations.swap:
        return None
    return (
        f"the scenario names `#swap {scenario.annotations.swap}`, but this machine swaps to "
        f"{'a synchronous device (zram)' if device == 'zram' else 'a swap file or partition'}"
    )


def _declined_pageout(kernel: tuple[Observation, ...], sim: tuple[Observation, ...]) -> str | None:
    """MADV_PAGEOUT is advice: the kernel may keep a page for reasons the simulator does not
    model (the page still in a per-CPU LRU batch, memory cgroup limits, swap space). When the
    simulator swapped a page out and the kernel kept it, the rest of the run is a different
    experiment: skip rather than report a disagreement."""
    swapped = {o.step for o in sim if o.value == "swapped out"}
    for o in kernel:
        if o.step in swapped and o.value == "stays resident":
            return f"the kernel kept the page resident at step {o.step} (`{o.command}`)"
    return None


def probe(
    *,
    presets: Iterable[str] | None = None,
    files: Iterable[tuple[str, str]] = (),
    timeout: float = DEFAULT_TIMEOUT,
    runner: Runner | None = None,
    frames: bool = False,
) -> ProbeReport:
    """Probe the named presets (all of them when ``presets`` is None and no file is given) and
    the given (name, text) scenario files, one after another."""
    release = capabilities.kernel_release()
    policy = capabilities.policy_for(release)
    files = list(files)
    names = list(presets) if presets is not None else ([] if files else list(PRESETS))
    results: list[ProbeResult] = []
    for preset_name in names:
        preset = PRESETS[preset_name]
        results.append(
            probe_scenario(
                parse(preset.text),
                name=preset.name,
                title=preset.title,
                policy=policy,
                timeout=timeout,
                runner=runner,
                frames=frames,
            )
        )
    for file_name, text in files:
        results.append(
            probe_scenario(
                parse(text),
                name=file_name,
                policy=policy,
                timeout=timeout,
                runner=runner,
                frames=frames,
            )
        )
    return ProbeReport(release, policy, tuple(results), capabilities.describe_swap())
