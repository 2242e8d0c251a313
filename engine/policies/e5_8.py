"""5.8: any GUP that takes a reference on a COW mapping breaks COW as if it wrote."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from engine.policies.base import KernelVersion
from engine.policies.e5_7 import Classic57


class EnforcedCow58(Classic57):
    """5.8: any GUP that takes a reference on a COW mapping breaks COW as if it wrote."""

    id = "5.8"
    label = "GUP always breaks COW"
    kernels = "5.8 (and stable backports)"
    since = (5, 8)
    until: ClassVar[KernelVersion | None] = (5, 8)
    commits: ClassVar[tuple[str, ...]] = ("17839856fd58",)
    story = (
        "Jann Horn's CVE-2020-29374 report led Linus to 'gup: document and work around \"COW can "
        "break either way\" issue': every get_user_pages that takes a reference (FOLL_GET or "
        "FOLL_PIN) on a COW mapping is turned into a write, so the caller owns a private copy at "
        "GUP time. It closed the vmsplice leak, but a read now looks like a write: a "
        "userfaultfd write-protected page raises a userfault on a mere read (Peter Xu's umap "
        "deadlock), and later COW events can still go the wrong way."
    )
    knobs: ClassVar[Mapping[str, str]] = {
        **Classic57.knobs,
        "gup_read": "break-as-write",
        # 3917c80280c9 ("thp: change CoW semantics for anon-THP", 5.8): a THP that cannot be
        # reused is split and only the subpage written is copied, no longer copied whole.
        "thp_cow": "split",
    }


POLICY = EnforcedCow58()
