"""≤ 4.8: the classic rule, and FOLL_FORCE drops FOLL_WRITE after a COW (CVE-2016-5195)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from engine.policies.base import KernelVersion
from engine.policies.e5_7 import Classic57


class DirtyCow48(Classic57):
    """≤ 4.8: the classic rule, and FOLL_FORCE drops FOLL_WRITE after a COW (CVE-2016-5195)."""

    id = "4.8"
    label = "Dirty COW era"
    kernels = "≤ 4.8"
    since = (0, 0)
    until: ClassVar[KernelVersion | None] = (4, 8)
    commits: ClassVar[tuple[str, ...]] = ("f33ea7f404e5", "c475a8ab625d")
    story = (
        "The classic mapcount rule, plus the bug fixed in October 2016: when a FOLL_FORCE write "
        "(ptrace, /proc/PID/mem) to a read-only private mapping had broken COW, get_user_pages "
        "dropped FOLL_WRITE and retried as a read. A concurrent MADV_DONTNEED can zap the private "
        "copy in between, so the retry maps the page-cache page and the write lands in a file the "
        "writer may only read: Dirty COW (CVE-2016-5195), exploited in the wild."
    )
    knobs: ClassVar[Mapping[str, str]] = {
        **Classic57.knobs,
        "force_write": "drop-foll-write",
        # Before 4.15 (0bcac06f27d7) every swap-in goes through the swap cache, zram too.
        "swapin_zram": "through-cache",
    }


POLICY = DirtyCow48()
