"""`runtime.c`, the part of every program that is the same for every scenario.

It is cut at two lines, ``/* @generated dimensions */`` (the scenario's sizes go there) and
``/* @generated scenario */`` (its steps and expectations). Each function that makes a system
call for a step follows a ``/* @helper NAME */`` line, so the page can show it beside the step.
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
