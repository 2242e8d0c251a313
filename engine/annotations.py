"""What a scenario says besides its commands: a lesson's annotations and the text's comments.

DESIGN.md §8. An annotation is a line whose first non-blank characters are one of `#title`,
`#policy`, `#:`, `#?`, `#goal` or `#swap`, followed by a space or the end of the line; it runs
to the end of the line, `;` included. Any other `#` starts a plain comment. The parser
(`engine.syntax`) builds these values; `engine.lesson` computes what they ask for (a question's
choices and answer, a goal's result) from traces.

Plain comments are kept as `Remark` values so that the canonical text, and so a link, keeps
them: a teacher's comment is part of what they shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ANNOTATION_WORDS",
    "GOAL_VERDICT_KINDS",
    "Annotations",
    "GoalTerm",
    "Question",
    "Remark",
    "SwapDevice",
]

# The words of §8, each followed by a space or the end of the line.
ANNOTATION_WORDS = ("#title", "#policy", "#:", "#?", "#goal", "#swap")

# The verdict kinds a `#goal` term may name: the kinds of DESIGN.md §4, in its order. The
# parser cannot import `engine.verdicts` (which imports the machine, which imports the
# parser), so the list is written here and a test holds it equal to `VERDICT_KINDS`.
GOAL_VERDICT_KINDS = ("leak", "stale", "userfault", "file-corrupted", "segv", "needless-copy")

SwapDevice = Literal["zram", "file"]
GoalTermKind = Literal["verdict", "no-verdict", "ok", "differ"]


@dataclass(frozen=True, slots=True)
class Remark:
    """A `#` line of the text (annotation or plain comment), kept for the canonical text.

    ``at`` is the number of commands before it. A trailing comment (``trailing``) sat on the
    line of command ``at`` (1-based) and is printed after it; any other remark is a line of its
    own, printed after the first ``at`` commands. ``text`` runs from the `#` to the end of the
    line, trailing blanks removed.
    """

    at: int
    text: str
    trailing: bool = False


@dataclass(frozen=True, slots=True)
class Question:
    """`#? TEXT` before the read of step ``step`` (`P read a` or `R read`)."""

    step: int
    text: str


@dataclass(frozen=True, slots=True)
class GoalTerm:
    """One term of a `#goal` line, as written (``text``) and as understood.

    ``verdict`` for `KIND@ID` (``kind`` "verdict") and `!KIND@ID` ("no-verdict"); ``ok@ID``
    has no verdict kind; ``differ@A,B`` has two policies. Policy ids are kept as written
    (`latest` stays `latest`): the link and the teacher's text say what they said.
    """

    text: str
    kind: GoalTermKind
    policies: tuple[str, ...]
    verdict: str | None = None


@dataclass(frozen=True, slots=True)
class Annotations:
    """A scenario's lesson data. ``notes`` maps a step to its note (lines joined by newlines),
    as (step, text) pairs in step order; ``questions`` are in step order, at most one a step;
    ``goal`` is None when the text has no `#goal` line.

    ``swap`` is the swap device (§10), default `file`: the replay hands it to the machine,
    and each era's policy decides what it changes (on `zram`, SWP_SYNCHRONOUS_IO, a page read
    back skips the swap cache and, from PageAnonExclusive on, is exclusive).
    """

    title: str | None = None
    policy: str | None = None
    notes: tuple[tuple[int, str], ...] = ()
    questions: tuple[Question, ...] = ()
    goal: tuple[GoalTerm, ...] | None = None
    swap: SwapDevice = "file"

    def note(self, step: int) -> str | None:
        """The teacher's note shown with ``step``, if any."""
        for at, text in self.notes:
            if at == step:
                return text
        return None

    def question(self, step: int) -> Question | None:
        """The question asked before the read of ``step``, if any."""
        for question in self.questions:
            if question.step == step:
                return question
        return None

    @property
    def is_lesson(self) -> bool:
        """Whether the text holds any annotation at all (a plain scenario holds none)."""
        return self != NO_ANNOTATIONS


NO_ANNOTATIONS = Annotations()
