"""A pause of Python's cyclic garbage collector while a replay builds its trace.

A replay allocates hundreds of thousands of records that all stay alive (one `Frame` per page
per fork or exit, one `Event` per page), and NamedTuples, unlike plain tuples, are never
untracked by the collector. The collector's full passes, triggered each time the tracked
objects grow by a quarter, walk all of them again: measured on the worst request of DESIGN.md
§7 (1,000 forks and exits of a 256-page process), five full passes took 45% of the replay. A
replay creates no reference cycles, so nothing it leaves behind needs the collector; the pause
only postpones the passes to the end, where one pass sees the trace once.

The collector is one per process and replays run on several threads at once (the app's heavy
requests), so the pause is counted: the first replay to start turns the collector off, the
last to finish turns it back on, and only if it was on before.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pause:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.was_enabled = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            if self.depth == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.depth += 1
        try:
            yield
        finally:
            with self.lock:
                self.depth -= 1
                if self.depth == 0 and self.was_enabled:
                    gc.enable()


collector_paused = _Pause()
