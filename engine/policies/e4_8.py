"""≤ 4.8: the classic rule, and FOLL_FORCE drops FOLL_WRITE after a COW (CVE-2016-5195)."""

from __future__ import annotations

from typing import ClassVar

from engine.policies.base import Decision, KernelVersion
from engine.policies.e5_7 import Classic57
from engine.state import Frame, Pte, Vma


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

    def force_write_proof(self, pte: Pte, frame: Frame, vma: Vma, cow_done: bool) -> Decision:
        """f33ea7f404e5 (2005) – 19be0eaffa3a (2016): once faultin_page saw VM_FAULT_WRITE on a
        !VM_WRITE VMA it cleared FOLL_WRITE, so the retry follows whatever the PTE maps."""
        if cow_done:
            return Decision(
                "allow",
                "FOLL_WRITE dropped after COW",
                "faultin_page",
                "f33ea7f404e5",
                "the COW fault happened once, so get_user_pages dropped FOLL_WRITE and now "
                "follows the PTE as a read, whatever page it maps",
                {"foll_write_dropped": True},
            )
        return Decision(
            "fault",
            "write fault first",
            "faultin_page",
            "f33ea7f404e5",
            "the PTE is read-only, so GUP takes a write fault to break COW",
            {"foll_write_dropped": False},
        )

    def after_force_cow(self) -> Decision:
        return Decision(
            "allow",
            "drop FOLL_WRITE after COW",
            "faultin_page",
            "f33ea7f404e5",
            "the COW fault is done, so get_user_pages drops FOLL_WRITE and retries as a read — "
            "it will follow whatever the PTE maps next",
        )


POLICY = DirtyCow48()
