""" "Did you mean …?" for a mistyped word in a scenario.

The parser says what it expected — a verb out of a list, or a few keywords in backticks — and
what it found. When the word found is a near miss of one of them (`wrte` for `write`, `relase`
for `release`), the error offers it: difflib's ratio, the same closeness Python's own
"Did you mean" uses for names, is plenty for words this short.
"""

from __future__ import annotations

import difflib
import re

from engine.syntax import ScenarioError

_ONE_OF = re.compile(r"\(one of: ([^)]*)\)")
_QUOTED = re.compile(r"`([^`]+)`")
_VERBS_FOR_REFERENCES = ("read", "write", "release")


def candidates(expected: str) -> list[str]:
    """The words ``expected`` offers: a ``(one of: …)`` list, else the backticked words."""
    listed = _ONE_OF.search(expected)
    if listed:
        words = [w.strip() for w in listed.group(1).split(",")]
    else:
        words = [w for w in _QUOTED.findall(expected) if " " not in w]
    if "command verb" in expected:
        # A reference's verbs (`pipe release`) are words the process list does not name.
        words += [w for w in _VERBS_FOR_REFERENCES if w not in words]
    return words


def did_you_mean(exc: ScenarioError) -> str:
    """`` — did you mean `write`?`` for a near miss, else the empty string."""
    found = str(exc.found)
    close = difflib.get_close_matches(found.lower(), candidates(str(exc.expected)), n=1)
    if not close or close[0] == found:
        return ""
    return f" — did you mean `{close[0]}`?"
