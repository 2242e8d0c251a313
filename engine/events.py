"""Events: the facts a step produced, each with the rule that fired and why."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

EventKind = Literal[
    "map",  # a process gained a mapping (mmap, first-touch fault, swap-in)
    "read",  # a load or a read through a reference observed a value
    "write",  # a store landed in a frame
    "reuse",  # write/unshare fault kept the page (do_wp_page reuse)
    "copy",  # COW copy (write fault, unshare fault, GUP-forced COW)
    "unshare",  # FAULT_FLAG_UNSHARE made the page exclusive without a copy
    "split",  # a huge PMD was split into PTEs (the folio stays whole), or a folio into pages
    "fork",  # fork duplicated a page table entry (shared) or copied a page for the child
    "gup",  # get_user_pages / pin_user_pages took a reference
    "release",  # a reference was dropped
    "unmap",  # a mapping went away (munmap, MADV_DONTNEED, exit)
    "free",  # a frame was freed (refcount reached 0)
    "protect",  # PTE permissions changed (mprotect, clear_refs, uffd-wp)
    "swap",  # swap-out or swap-in
    "userfault",  # a userfaultfd write-protect fault was delivered
    "segv",  # the kernel refused an access with SIGSEGV
    "efault",  # a syscall / GUP failed with -EFAULT (or another errno)
    "error",  # the command could not run (unknown process, page, reference)
    "info",  # narration that is not a kernel decision (e.g. process created)
]


class Event(NamedTuple):
    """One decision or fact.

    ``inputs`` are the values the decision read (refcount, mapcount, pins, exclusive bit, flags),
    ``rule`` names the rule that fired, ``kernel`` the kernel function, ``commit`` the commit
    that introduced that behaviour (empty for era-independent mechanics with no single commit),
    ``text`` is the one-sentence *why* a student can follow.
    """

    kind: EventKind
    text: str
    rule: str = ""
    kernel: str = ""
    commit: str = ""
    proc: str | None = None
    page: str | None = None
    ref: str | None = None
    pfn: int | None = None
    new_pfn: int | None = None
    inputs: Mapping[str, int | bool | str] = {}  # never mutated: shared empty default
