"""Pages for links the server cannot read: what is wrong, where, and a way on.

A broken link must never lose the user's work: the error view carries their text back into the
editor, and when the parser says which line is bad, offers the scenario up to that line as a
working link. The same view renders as a whole page or, because htmx 4 swaps 4xx responses too,
as the fragment that replaces the simulator region.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.views.hints import did_you_mean
from app.views.links import LinkError, View, make_link
from app.views.runs import Stopped
from engine.policies import POLICIES, RefusedCombination, UnknownPolicy
from engine.syntax import ScenarioError, ScenarioLimitError, parse


@dataclass(frozen=True, slots=True)
class ErrorView:
    status: int
    title: str
    message: str
    text: str  # the user's scenario text, verbatim
    where: tuple[tuple[str, str], ...] = ()
    excerpt: str = ""
    caret: str = ""
    upto_href: str = ""
    upto_count: int = 0
    links: tuple[tuple[str, str], ...] = ()


def _cut_before(text: str, line: int, column: int) -> str:
    """The text before the command that holds (line, column), both 1-based.

    Lines before ``line`` are kept whole; on ``line`` itself, commands are `;`-separated, so
    everything up to the last `;` before the column is still good.
    """
    lines = text.split("\n")
    line = max(1, min(line, len(lines)))
    kept = lines[: line - 1]
    head = lines[line - 1][: max(0, column - 1)]
    if ";" in head:
        kept.append(head[: head.rindex(";")])
    return "\n".join(kept).rstrip("; \n")


def scenario_error(
    exc: ScenarioError, text: str, policy: str | None, view: View, path: str = "/"
) -> ErrorView:
    lines = text.split("\n")
    line_text = lines[exc.line - 1] if 0 < exc.line <= len(lines) else ""
    upto = _cut_before(text, exc.line, exc.column)
    upto_count = 0
    upto_href = ""
    if upto.strip():
        try:
            upto_count = len(parse(upto).commands)
        except (ScenarioError, ScenarioLimitError):
            upto_count = 0
        if upto_count:
            upto_href = make_link(path, upto, policy=policy, view=view)
    return ErrorView(
        status=400,
        title="The scenario in this link has a syntax error",
        message=str(exc) + did_you_mean(exc),
        text=text,
        where=(
            ("line", str(exc.line)),
            ("column", str(exc.column)),
            ("expected", str(exc.expected)),
            ("found", str(exc.found)),
        ),
        excerpt=line_text,
        caret=" " * max(0, exc.column - 1) + "^",
        upto_href=upto_href,
        upto_count=upto_count,
    )


def limit_error(exc: ScenarioLimitError, text: str) -> ErrorView:
    return ErrorView(
        status=413,
        title="This scenario is larger than cowlab runs",
        message=str(exc),
        text=text,
    )


def compare_limit_error(weight: int, limit: int, text: str, policy: str) -> ErrorView:
    return ErrorView(
        status=413,
        title="This scenario is too large to compare across eras",
        message=(
            f"Comparing replays a scenario under every era, so it takes scenarios whose trace "
            f"holds at most {limit:,} page-table, frame and reference entries (the compare "
            f"limit); this one holds {weight:,}. Open it under one era, or compare a shorter "
            "scenario (fewer commands, processes or pages)."
        ),
        text=text,
        where=(("limit", "compare"),),
        links=((f"Open it under {policy}", make_link("/", text, policy=policy)),),
    )


def stopped_error(exc: Stopped) -> ErrorView:
    return ErrorView(
        status=503,
        title="This scenario takes longer than cowlab spends on one request",
        message=(
            f"cowlab stopped replaying it after {exc.seconds:g} s, the time it gives one "
            "request. A shorter scenario (fewer commands, processes or pages) replays faster; "
            "the server may also be busy, so trying again later can work."
        ),
        text="",
        where=(("limit", "time"),),
    )


def link_error(exc: LinkError, text: str) -> ErrorView:
    return ErrorView(
        status=exc.status,
        title=f"This link's “{exc.param}” cannot be read",
        message=exc.message,
        text=text,
        where=(("parameter", exc.param),),
    )


def policy_error(
    exc: UnknownPolicy, text: str, step: int | None, view: View, path: str = "/"
) -> ErrorView:
    return ErrorView(
        status=400,
        # A custom lab point whose knobs contradict each other is known, and refused.
        title="This link names a design the policy lab refuses"
        if isinstance(exc, RefusedCombination)
        else "This link names a kernel era cowlab does not know",
        message=str(exc),
        text=text,
        where=(("parameter", "policy"),),
        links=(
            (("Compare it under every era", make_link(path, text, step=step, view=view)),)
            if path == "/compare"
            else tuple(
                (f"Open it under {pid}", make_link(path, text, policy=pid, step=step, view=view))
                for pid in POLICIES
            )
        ),
    )


def not_found(path: str) -> ErrorView:
    return ErrorView(
        status=404,
        title="There is no page here",
        message=f"cowlab has no page at {path}. The simulator is at /.",
        text="",
    )


def server_error() -> ErrorView:
    return ErrorView(
        status=500,
        title="Something went wrong on the server",
        message=(
            "cowlab failed while answering this request; the link itself may be fine. "
            "Reloading tries again, and the server's log says what failed."
        ),
        text="",
        links=(("Open the simulator", "/"),),
    )
