"""The built-in challenges, in rising difficulty (issue 12).

A challenge is a `#goal` (DESIGN.md §8) with a short brief, a starting scenario that holds the
goal line and perhaps a few commands (and does not meet the goal), hints to open one at a time,
and a solution. tests/engine/test_lessons.py checks that every solution meets its goal and no
starting scenario does. A teacher writes a new challenge the same way: a `#goal` line in a link.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from textwrap import dedent
from types import MappingProxyType

__all__ = ["CHALLENGES", "Challenge"]


@dataclass(frozen=True, slots=True)
class Challenge:
    name: str
    title: str
    brief: str
    start: str  # scenario text: the `#goal` line and perhaps a few commands
    hints: tuple[str, ...]  # to be opened in order
    solution: str  # scenario text, with the same `#goal` line


def _challenge(
    name: str, title: str, brief: str, goal: str, start: str, hints: tuple[str, ...], rest: str
) -> Challenge:
    head = f"#goal {goal}\n"
    start_text = dedent(start).strip()
    return Challenge(
        name=name,
        title=title,
        brief=" ".join(brief.split()),
        start=head + (start_text + "\n" if start_text else ""),
        hints=hints,
        solution=head + (start_text + "\n" if start_text else "") + dedent(rest).strip() + "\n",
    )


_CHALLENGES = (
    _challenge(
        "refused",
        "Make the kernel say no",
        """Make the kernel refuse an access: a read or write it answers with SIGSEGV.""",
        "segv@6.2",
        "P mmap a",
        (
            "A process may only touch the pages it maps.",
            "`P munmap a` removes the mapping. What does a read of `a` do after it?",
        ),
        """
        P munmap a
        P read a
        """,
    ),
    _challenge(
        "pipe-leak",
        "A pipe that reads what its process never wrote",
        """Make a pipe see data its process never wrote, under 5.7 but not under 5.9
        (CVE-2020-29374).""",
        "leak@5.7 !leak@5.9",
        """
        P mmap data
        P write data old
        P fork C
        """,
        (
            "A pipe can hold a reference to a page: `C vmsplice data as pipe`.",
            "The reference must outlive the child's own mapping: let the child unmap the page.",
            "Now the parent writes something new, and the child reads the pipe (`pipe read`).",
        ),
        """
        C vmsplice data as pipe
        C munmap data
        P write data secret
        pipe read
        """,
    ),
    _challenge(
        "umap-deadlock",
        "A read that faults like a write",
        """Make a read-only get_user_pages raise a userfaultfd write-protect fault under 5.8, but
        not under Peter Xu's FAULT_FLAG_BREAK_COW proposal.""",
        "userfault@5.8 !userfault@5.8-break-cow",
        """
        P mmap page
        P write page v1
        """,
        (
            "`P uffd-wp page on` write-protects the page with userfaultfd.",
            "5.8 turns a read GUP on a COW mapping into a write: take one with `P get page ro`.",
        ),
        """
        P uffd-wp page on
        P get page ro as dio
        """,
    ),
    _challenge(
        "dirty-cow",
        "Write a file you may only read",
        """Corrupt the page cache of a read-only file under 4.8, but not under 5.7 (Dirty COW,
        CVE-2016-5195).""",
        "file-corrupted@4.8 !file-corrupted@5.7",
        """
        file F root-data
        attacker mmap a file=F ro
        """,
        (
            "A plain write to a read-only mapping is refused.",
            "/proc/self/mem writes with FOLL_FORCE: `attacker forcewrite a VALUE`.",
            "Dirty COW needs a thread racing madvise(MADV_DONTNEED): add `race`.",
        ),
        """
        attacker forcewrite a pwned race
        """,
    ),
    _challenge(
        "rdma-fork",
        "DMA into the wrong process",
        """A NIC writes through a pinned buffer. Make the parent miss the DMA under 5.8, and
        give 5.9 nothing to complain about.""",
        "stale@5.8 ok@5.9",
        """
        P mmap buf
        P write buf v1
        """,
        (
            "RDMA registers memory with a writable long-term pin: `P pin buf rw longterm as mr`.",
            "Then fork, and let the parent write its buffer.",
            "The NIC writes through the pin (`mr write dma-data`). Who reads it?",
        ),
        """
        P pin buf rw longterm as mr
        P fork C
        P write buf parent-v2
        mr write dma-data
        C read buf
        P read buf
        """,
    ),
    _challenge(
        "ro-pin-stale",
        "A read-only pin that goes stale",
        """Make a read-only long-term pin miss its own process's write under 5.9, and have 5.19
        get everything right.""",
        "stale@5.9 ok@5.19",
        """
        P mmap mem
        P write mem v1
        """,
        (
            "The pin must be taken on a page that is shared: fork first.",
            "`P pin mem ro longterm as pin`, then the parent writes.",
            "Read through the pin: `pin read`.",
        ),
        """
        P fork C
        P pin mem ro longterm as pin
        P write mem parent-v2
        pin read
        """,
    ),
    _challenge(
        "needless-copy",
        "A copy nobody needed",
        """Make the kernel copy a page that only one process uses, under 5.9 but not under
        5.18.""",
        "needless-copy@5.9 !needless-copy@5.18",
        """
        P mmap a
        P write a v1
        """,
        (
            "Under 5.9 any extra reference makes a write fault copy, even one the kernel holds.",
            "The swap cache holds a reference: `P swapout a`.",
            "Fault the page back in with a read (read-only, still in the swap cache), then "
            "write it.",
        ),
        """
        P swapout a
        P read a
        P write a v2
        """,
    ),
    _challenge(
        "before-fork",
        "A leak even 5.8 lets through",
        """Make a pipe see data its process never wrote under 5.8, but not under 5.9.""",
        "leak@5.8 !leak@5.9",
        """
        P mmap mem
        P write mem v1
        """,
        (
            "5.8 breaks COW when a GUP takes its reference on a page that is shared. What if "
            "the page is not shared yet?",
            "vmsplice first (`P vmsplice mem as pipe`), fork after.",
            "Then the parent unmaps the page, the child writes it, and the parent reads the pipe.",
        ),
        """
        P vmsplice mem as pipe
        P fork C
        P munmap mem
        C write mem child-v2
        pipe read
        """,
    ),
    _challenge(
        "zero-page-pin",
        "A pin only 6.2 gets right",
        """Make a read-only long-term pin go stale under 5.19, with 6.2 getting it right.""",
        "stale@5.19 ok@6.2",
        "P mmap mem",
        (
            "Which page does a never-written anonymous page map after a read?",
            "Pin that page read-only and long-term: `P pin mem ro longterm as pin`.",
            "Write the page, then read the pin.",
        ),
        """
        P read mem
        P pin mem ro longterm as pin
        P write mem v2
        pin read
        """,
    ),
    _challenge(
        "swap-hole",
        "The leak that swap kept open",
        """Make a pipe see data its process never wrote under 5.9, but not under 5.18.""",
        "leak@5.9 !leak@5.18",
        """
        P mmap mem
        P write mem v1
        """,
        (
            "5.9's page_count rule is in do_wp_page(); a write fault on a swap entry is decided "
            "in do_swap_page().",
            "Page the memory out before fork: `P swapout mem`.",
            "Then the vmsplice leak: the child reads the page (swap-in), vmsplices it and "
            "unmaps it; the parent writes; the child reads the pipe.",
        ),
        """
        P swapout mem
        P fork C
        C read mem
        C vmsplice mem as pipe
        C munmap mem
        P write mem parent-v2
        pipe read
        """,
    ),
    _challenge(
        "odirect-lost",
        "A reference left behind, without any fork",
        """No fork allowed: make a writable get_user_pages reference (O_DIRECT, FOLL_GET) lose
        its process's write under 5.9, but not under 5.19.""",
        "stale@5.9 !stale@5.19",
        """
        P mmap a
        P write a v1
        """,
        (
            "O_DIRECT took FOLL_GET references: `P get a rw as dio`.",
            "Something must write-protect the PTE again: soft-dirty tracking does "
            "(`P clear-softdirty`).",
            "Now the process writes, and the device reads through `dio`.",
        ),
        """
        P get a rw as dio
        P clear-softdirty
        P write a v2
        dio read
        """,
    ),
    _challenge(
        "proposals-disagree",
        "Where the two August 2020 proposals part",
        """Write a scenario on which Peter Xu's FAULT_FLAG_BREAK_COW and Linus'
        READ_WRONG_SIDE_COW_OK disagree: some read observes another value.""",
        "differ@5.8-break-cow,5.8-wrong-side-ok",
        "",
        (
            "They treat alike every caller that does not pass `wrong-side-ok`.",
            "Linus' race: A and B share a page, A takes `get … ro wrong-side-ok`, then A "
            "unmaps it.",
            "B writes; read A's reference.",
        ),
        """
        A mmap mem
        A write mem v1
        A fork B
        A get mem ro as ref wrong-side-ok
        A munmap mem
        B write mem secret
        ref read
        """,
    ),
    _challenge(
        "three-eras",
        "Three eras, three answers",
        """One scenario: a leak under 5.7, a stale reference under 5.9, and nothing at all to
        report under 5.19.""",
        "leak@5.7 stale@5.9 ok@5.19",
        "",
        (
            "No single bug does it: put two stories in one scenario, with their own processes.",
            "The vmsplice leak gives the leak under 5.7 and is clean from 5.8 on.",
            "A read-only pin on a shared page goes stale under 5.9 and is reliable from 5.19.",
        ),
        """
        P mmap data
        P write data old
        P fork C
        C vmsplice data as pipe
        C munmap data
        P write data secret
        pipe read
        Q mmap mem
        Q write mem v1
        Q fork D
        Q pin mem ro longterm as pin
        Q write mem q-v2
        pin read
        """,
    ),
)

CHALLENGES: Mapping[str, Challenge] = MappingProxyType({c.name: c for c in _CHALLENGES})
"""Every built-in challenge by name, easiest first."""
