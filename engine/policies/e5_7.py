"""4.9 – 5.7: the classic mapcount rule (every default of `Policy`)."""

from __future__ import annotations

from typing import ClassVar

from engine.policies.base import KernelVersion, Policy


class Classic57(Policy):
    """E0 as of 4.9–5.7: the classic mapcount rule, which `Policy` implements for every era."""

    id: ClassVar[str] = "5.7"
    label: ClassVar[str] = "Classic mapcount rule"
    kernels: ClassVar[str] = "4.9 – 5.7"
    commits: ClassVar[tuple[str, ...]] = ("c475a8ab625d", "19be0eaffa3a", "3faa52c03f44")
    story: ClassVar[str] = (
        "A write fault on a write-protected anonymous page reuses it when no other page table "
        "maps it (mapcount plus swap count at most 1) and copies it otherwise. Extra references "
        "taken by get_user_pages, pins and pipe buffers are not counted, so a page a pipe still "
        "holds can be taken over by the other side of a fork: CVE-2020-29374. Read-GUP never "
        "breaks COW, fork knows nothing about pins, and a R/O pin may silently go stale. Pins "
        "are counted as 3faa52c03f44 counts them, first in 5.7; before it a pin was a plain "
        "reference, which no rule of this era tells apart."
    )
    since = (4, 9)
    until: ClassVar[KernelVersion | None] = (5, 7)


POLICY = Classic57()
