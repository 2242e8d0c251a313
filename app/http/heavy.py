"""Heavy requests off the event loop, with a deadline, stopped when their client goes.

A scenario at the limits of DESIGN.md §7 takes a second or more to replay and lay out; on the
event loop that would stall every other request of the worker. Such a request runs in a worker
thread instead — at most `HEAVY_JOBS` at a time, so heavy requests cannot take every thread
and every core — under a `Budget`: `app.views.runs` replays command by command and the JSON
serialiser encodes step by step, checking between them whether the deadline has passed or the
client has disconnected, and stop there (`Stopped`), so a request nobody waits for stops.

Which requests are heavy is decided on the *decompressed* scenario (`scenario_chars`): a 1.8 KB
``z:`` link can expand to 64 KB of scenario at the limits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from starlette.types import Receive

from app.views.links import LinkError, decode_scenario
from app.views.runs import BUDGET, Budget, Stopped

T = TypeVar("T")

# The largest preset is ~150 characters and replays in well under a millisecond; a scenario
# of 512 characters can map and fork a thousand page-table entries (a few milliseconds), and
# past that the thread hop (~0.1 ms) is worth its cost.
OFFLOAD_CHARS = 512
# The worst request within the limits (1,000 forks and exits of a 256-page process) takes
# 2–3 s on a quiet 2-core machine and several times that when other jobs share it
# (docs/benchmarks.md); past this a request is answered 503 rather than holding a thread.
HEAVY_SECONDS = 8.0
# Heavy requests running at once per worker; the others wait for a slot (within their deadline).
HEAVY_JOBS = 2

# The event loop shares the GIL with the heavy threads: a thread that wants it waits for the
# holder's switch interval (5 ms by default) at every turn, and a tiny request takes a dozen
# turns (accept, read, write, the loop's polls). At 1 ms the loop waits a fifth as long; the
# heavy threads pay a few more switches. (Measured: the slowest tiny page during a heavy one
# fell from 0.2–0.4 s to 0.1–0.15 s on a loaded 2-core machine.)
SWITCH_INTERVAL_S = 0.001

_limiter = anyio.CapacityLimiter(HEAVY_JOBS)


def share_the_gil() -> None:
    """Set the interpreter's switch interval for a worker that offloads heavy requests."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def scenario_chars(s: str | None) -> int:
    """The length of the scenario a link's ``s`` carries, decompressed (0 without one).

    A link that does not decode counts as its own length: the route answers it with an error
    page at once.
    """
    if not s:
        return 0
    if s.startswith("z:"):
        try:
            return len(decode_scenario(s))
        except LinkError:
            return len(s)
    return len(s)


def is_heavy(chars: int) -> bool:
    return chars > OFFLOAD_CHARS


async def offload(receive: Receive, work: Callable[[], T]) -> T:
    """``work()`` in a worker thread under a budget of `HEAVY_SECONDS`; raises
    `app.views.runs.Stopped` when the deadline passes or the client (read from ``receive``)
    disconnects first.

    The request's body must have been read already: what ``receive`` gives next is the
    disconnect.
    """
    budget = Budget.starting_now(HEAVY_SECONDS)

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        budget.gone.set()

    def run() -> T:
        token = BUDGET.set(budget)
        try:
            budget.check()  # the deadline may have passed while it waited for a slot
            return work()
        finally:
            BUDGET.reset(token)
            _trim()  # here, off the loop: it walks the heap

    outcome: T | Stopped
    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        try:
            outcome = await anyio.to_thread.run_sync(run, limiter=_limiter)
        except Stopped as exc:
            # Raised outside the group: inside it would come out wrapped in an ExceptionGroup.
            outcome = exc
        finally:
            group.cancel_scope.cancel()
    if isinstance(outcome, Stopped):
        raise outcome
    return outcome


def _libc_trim() -> Callable[[], object]:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to give back this way
        return lambda: None
    return lambda: trim(0)


# A heavy request allocates and frees hundreds of megabytes (a replay's states, an answer's
# JSON); glibc keeps freed heap pages unless asked to give them back. (Measured: a worker
# after one round of worst requests held 487 MB without this, 306 MB with it.)
_trim = _libc_trim()
