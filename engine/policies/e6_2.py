"""6.2 – 6.12: R/O long-term pins also unshare the zero page and page-cache pages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from engine.policies.base import KernelVersion
from engine.policies.e5_19 import Exclusive519


class LongtermUnshare62(Exclusive519):
    """6.2 – 6.12: R/O long-term pins also unshare the zero page and page-cache pages.

    Ends where 6.15 (`e6_15`) starts reusing PTE-mapped THPs mapped by one process alone;
    until then a subpage of such a THP is copied on every write fault (a needless copy)."""

    id = "6.2"
    label = "Reliable R/O long-term pins"
    kernels = "6.2 – 6.12"
    since = (6, 2)
    until: ClassVar[KernelVersion | None] = (6, 12)
    commits: ClassVar[tuple[str, ...]] = Exclusive519.commits + (
        "8d6a0ac09a16",
        "84209e87c696",
        "51d3d5eb74ff",
    )
    story = (
        "'mm/gup: reliable R/O long-term pinning in COW mappings' (84209e87c696) extends "
        "FAULT_FLAG_UNSHARE to anything in a private mapping: a R/O FOLL_LONGTERM pin of the "
        "shared zero page or of a file's page-cache page first gets an exclusive anonymous copy, "
        "so the pin keeps seeing what the process writes. Drivers stop abusing FOLL_FORCE to get "
        "the same effect, and mprotect may map clean exclusive pages writable too."
    )
    knobs: ClassVar[Mapping[str, str]] = {
        **Exclusive519.knobs,
        "ro_pin": "longterm-all",
        "mprotect_upgrade": "clean-exclusive",
        # 51d3d5eb74ff (merged for 6.2, Cc stable 5.19+): uffd-wp enables writenotify, so
        # mprotect keeps a shared mapping's uffd-wp PTE read-only. Not in 5.19 (see there).
        "mprotect_uffd_wp": "keep",
    }


POLICY = LongtermUnshare62()
