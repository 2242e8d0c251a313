"""The step deck: which steps a page holds ready to show without asking the server (issue 23).

A step answer is a pure function of its link, so a page that holds the answers of the steps
around the one it shows can step with no round trip: the key press swaps in what the server
would have sent. The server still draws every picture; the browser only swaps markup.

What one page may carry is bounded twice: at most `STEP_WINDOW` steps on each side of the
current one, and at most `DECK_MAX_BYTES` of markup (the nearest steps first). A lesson's
question bounds it once more: nothing after a question the learner has not answered is sent,
so no outcome of a `#?` read reaches the page before the reveal (its reveal is a link to the
server, as before).

The downloaded file (`app.http.routes.offline`) holds every step, within the `OFFLINE_MAX_*`
bounds;
there is no server to ask for the answer of a question, so the file carries it *sealed*
(`seal`): not markup, not readable text, unsealed by the page's script when the learner
answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

STEP_WINDOW = 12  # steps on each side of the current one a page holds
DECK_MAX_BYTES = 1_500_000  # markup a page's deck may carry, whatever the window
# The downloaded file holds every step and every answer to each question, drawn by the server:
# at these bounds it stays under 2 MB of gzip (DESIGN.md §7, `offline_kb`) and its request
# under the worst-request budget. Every built-in lesson and preset is far inside them (at most
# 40 steps, weight 126).
OFFLINE_MAX_STEPS = 200
OFFLINE_MAX_WEIGHT = 10_000  # `app.views.runs.Run.weight`: 200 steps of 64 processes × 16 pages
OFFLINE_MAX_ANSWERS = 200  # a question's answers are a choice each and "show the answer"


@dataclass(frozen=True, slots=True)
class DeckSpan:
    """The steps a deck around step ``at`` holds, nearest first, and whether later or earlier
    steps exist that a deck around another step could hold (the page fetches again near
    the edge)."""

    at: int
    lo: int
    hi: int
    more_before: bool
    more_after: bool

    def nearest_first(self) -> Iterator[int]:
        yield self.at
        for d in range(1, max(self.at - self.lo, self.hi - self.at) + 1):
            if self.at + d <= self.hi:
                yield self.at + d
            if self.at - d >= self.lo:
                yield self.at - d


def deck_span(
    at: int, last: int, questions: Iterable[int], revealed: bool, window: int = STEP_WINDOW
) -> DeckSpan:
    """The steps around ``at`` (of ``0..last``) a page may hold. ``questions``: the steps of
    the lesson's `#?` reads; ``revealed``: the learner has answered the one at ``at``.

    The next unanswered question's step is the last one held (shown as the page shows it:
    the machine before the read); the steps after it would tell its outcome.
    """
    lo, hi = max(0, at - window), min(last, at + window)
    ahead = [q for q in questions if q > at or (q == at and not revealed)]
    stopped = bool(ahead) and min(ahead) <= hi
    if stopped:
        hi = min(ahead)
    return DeckSpan(at, lo, hi, lo > 0, hi < last and not stopped)


# ROT47 over the printable ASCII letters: the text stays text of the same shape (gzip keeps
# its ratio, base64 would not), and no word of the answer can be read or searched for.
_PLAIN = "".join(chr(c) for c in range(33, 127))
_SEALED = _PLAIN[47:] + _PLAIN[:47]
_SEAL = str.maketrans(_PLAIN, _SEALED)


def seal(markup: str) -> str:
    """``markup`` as the downloaded file carries an answer (the page's script unseals it)."""
    return markup.translate(_SEAL)


def unseal(sealed: str) -> str:
    return sealed.translate(_SEAL)  # ROT47 is its own inverse
