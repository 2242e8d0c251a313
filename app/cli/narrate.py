"""Plain-text narration of traces, for the terminal and for pasting into a mail.

A kernel engineer reading a trace wants, per step, the command, what the kernel did and why, and
the function and commit behind it — compactly, one idea per line — and at the end the verdicts.
Everything here is formatting: the engine has already decided and explained; this module only
lays its words out. Output is plain text with no colour or terminal control, so it survives a
pipe, a file and a mail client.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

from engine.commands import Read, RefRead
from engine.events import Event
from engine.trace import VERDICT_KINDS, Step, Trace, VerdictKind

WIDTH = 96  # wrap long event sentences; mail clients and review tools cope with this width
STEP_INDENT = "    "
DETAIL_INDENT = "      "

# One letter per verdict kind for the wide presets table (`segv` is V: S is taken by stale).
VERDICT_LETTERS: Mapping[VerdictKind, str] = {
    "leak": "L",
    "stale": "S",
    "userfault": "U",
    "file-corrupted": "F",
    "segv": "V",
    "needless-copy": "C",
}
NO_VERDICT = "."

# Events that mean the command did not do what it asked; a read step that failed shows which.
_REFUSALS = ("segv", "efault", "error")


def policy_header(trace: Trace) -> str:
    policy = trace.policy
    return f"policy {policy.id}: {policy.label} (kernels: {policy.kernels})"


def _wrap(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def _input_text(value: int | bool | str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def event_lines(event: Event) -> list[str]:
    """The event's sentence, then `kernel: kind — rule [commit]` and the inputs it read."""
    lines = _wrap(event.text, STEP_INDENT, DETAIL_INDENT)
    if event.kernel or event.rule or event.commit:
        detail = f"{event.kernel}: {event.kind}" if event.kernel else event.kind
        if event.rule:
            detail += f" — {event.rule}"
        if event.commit:
            detail += f" [{event.commit}]"
        lines.append(DETAIL_INDENT + detail)
    if event.inputs:
        inputs = " ".join(f"{k}={_input_text(v)}" for k, v in event.inputs.items())
        lines += _wrap(inputs, DETAIL_INDENT + "inputs: ", DETAIL_INDENT + "        ")
    return lines


def step_lines(step: Step) -> list[str]:
    lines = [f"[{step.index}] {step.text}"]
    for event in step.events:
        lines += event_lines(event)
    if step.observed is not None:
        lines.append(f"{STEP_INDENT}=> observed: {step.observed.describe()}")
    return lines


def verdict_lines(trace: Trace) -> list[str]:
    if not trace.verdicts:
        return ["verdicts: none"]
    lines = ["verdicts:"]
    for v in trace.verdicts:
        subject = f" ({v.subject})" if v.subject else ""
        lines += _wrap(f"{v.kind}{subject}: {v.text}", f"  [{v.step}] ", DETAIL_INDENT)
    return lines


def narrate(trace: Trace) -> str:
    """The whole trace of one policy: header, one block per step, verdicts."""
    lines = [policy_header(trace), ""]
    for step in trace.steps[1:]:  # step 0 is the empty machine: nothing to narrate
        lines += step_lines(step)
    lines += ["", *verdict_lines(trace)]
    return "\n".join(lines) + "\n"


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; the first row is the header, underlined."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])]) + "\n"


def _observed_cell(step: Step) -> str:
    if step.observed is not None:
        return step.observed.text
    refused = next((e.kind for e in step.events if e.kind in _REFUSALS), None)
    return f"({refused})" if refused else "-"


def kinds_text(kinds: Sequence[VerdictKind]) -> str:
    return ", ".join(kinds) if kinds else "none"


def summary(traces: Sequence[Trace]) -> str:
    """One row per policy: what each read observed, then the verdict kinds.

    Policies are rows because there are always eleven of them, while a scenario usually has a
    few reads: this keeps the table narrow enough to paste.
    """
    first = traces[0]
    # Every read, including one the kernel refused (it observes nothing but is still a row).
    reads = [s.index for s in first.steps[1:] if isinstance(s.command, Read | RefRead)]
    header = ["policy", *(f"[{k}] {first.steps[k].text}" for k in reads), "verdicts"]
    rows = [header]
    for trace in traces:
        cells = [_observed_cell(trace.steps[k]) for k in reads]
        rows.append([trace.policy.id, *cells, kinds_text(trace.verdict_kinds())])
    return table(rows)


def presets_table(
    policies: Sequence[str],
    presets: Sequence[tuple[str, str, Mapping[str, Sequence[VerdictKind]]]],
) -> str:
    """Presets × policies, one letter per verdict kind, the title last, the legend under it.

    ``presets`` holds (name, title, verdict kinds by policy id) in the order to show.
    """
    rows = [["preset", *policies, "title"]]
    for name, title, kinds in presets:
        cells = [
            "".join(VERDICT_LETTERS[k] for k in VERDICT_KINDS if k in kinds[p]) or NO_VERDICT
            for p in policies
        ]
        rows.append([name, *cells, title])
    legend = " · ".join(f"{letter} {kind}" for kind, letter in VERDICT_LETTERS.items())
    return table(rows) + f"\n{legend} · {NO_VERDICT} none\n"
