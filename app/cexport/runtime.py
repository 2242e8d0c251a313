"""`runtime.c`, the part of every program that is the same for every scenario.

It is cut at two lines, ``/* @generated dimensions */`` (the scenario's sizes go there) and
``/* @generated scenario */`` (its steps and expectations). Each function that makes a system
call for a step follows a ``/* @helper NAME */`` line, so the page can show it beside the step.

What only some scenarios use sits between ``/* @if FEATURE */`` and ``/* @endif FEATURE */``
lines (`FEATURES`); `trim` keeps a feature's lines only in the program of a scenario that uses
it, so a program a teacher hands out carries no code its scenario never runs.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Runtime:
    prelude: str  # includes, and fallbacks for old headers
    runtime: str  # what every process knows, and the helpers
    main: str  # the coordinator
    helpers: dict[str, str]  # helper name -> its source (comment and function)
    calls: dict[str, tuple[str, ...]]  # helper name -> the helpers it calls, transitively


# Each feature and the helpers whose call in a step means the scenario uses it.
FEATURES: dict[str, tuple[str, ...]] = {
    "iouring": ("do_iouring", "ring_read", "ring_write", "ring_release"),
    "uffd": ("do_uffd_wp",),
    "gup": ("do_pin", "gup_read", "gup_release"),
    "huge": ("map_thp", "map_hugetlb", "do_pte_map"),
    "softdirty": ("do_clear_softdirty",),
    "forcewrite": ("do_forcewrite",),
}
_REGION = re.compile(
    r"^[ \t]*/\* @if (\w+) \*/\n(.*?)^[ \t]*/\* @endif \1 \*/\n", re.MULTILINE | re.DOTALL
)
_MARK = re.compile(r"^[ \t]*/\* @(?:if|endif) \w+ \*/\n", re.MULTILINE)


def trim(text: str, features: frozenset[str] | set[str]) -> str:
    """``text`` with the regions of the features not in ``features`` cut out, and every
    region's marker lines gone."""
    unknown = {m.group(1) for m in _REGION.finditer(text)} - set(FEATURES)
    if unknown:
        raise ValueError(f"runtime.c names features no table knows: {sorted(unknown)}")
    kept = _REGION.sub(lambda m: m.group(2) if m.group(1) in features else "", text)
    return _MARK.sub("", kept)


_HELPER = re.compile(r"^/\* @helper (\w+) \*/\n(.*?^\}\n)", re.MULTILINE | re.DOTALL)


@functools.cache
def runtime() -> Runtime:
    source = resources.files("app.cexport").joinpath("runtime.c").read_text(encoding="utf-8")
    prelude, rest = source.split("/* @generated dimensions */\n")
    part, main = rest.split("/* @generated scenario */\n")
    helpers = {m.group(1): _MARK.sub("", m.group(2)) for m in _HELPER.finditer(source)}
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
