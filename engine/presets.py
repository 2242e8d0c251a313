"""The preset library: scenarios a student can load with one click, in teaching order.

Most presets are the base-page and non-anonymous cases of the kernel's own COW selftest,
tools/testing/selftests/mm/cow.c (David Hildenbrand, 6.1/6.2), titled exactly as the selftest
announces them ("<test> ... with <backing>"), so a reader can put a preset beside a selftest log.
The others are the bugs and mail threads the selftest was written to pin down: Dirty COW,
CVE-2020-29374, the RDMA fork problem, and the August 2020 argument between Peter Xu's
FAULT_FLAG_BREAK_COW and Linus' READ_WRONG_SIDE_COW_OK.

How the selftest's C maps onto the scenario language (DESIGN.md §2):
- memset(mem, …) is a `write` with a value naming the writer (`v1` for the initial populate,
  then `parent-v2` / `child-v2`), so an observed value says who wrote it.
- "back up the content and compare later" is a `read`; the later read is the comparison.
- vmsplice() into a pipe is `vmsplice … as pipe`, reading the pipe is `pipe read`.
- gup_test PIN_LONGTERM_TEST_START is `pin … ro longterm` (`fast` for the GUP-fast variants),
  PIN_LONGTERM_TEST_READ is `pin read`; an io_uring fixed buffer is `iouring`.
- the mprotect() round trip is `mprotect … ro` / `mprotect … rw`, clear_softdirty() is
  `clear-softdirty`, MADV_PAGEOUT is `swapout`.
After the base-page library come the same anonymous cases on huge pages, PMD-mapped THP,
PTE-mapped THP and hugetlb (DESIGN.md §10; built from engine/huge_presets.py), one backing after
the other: the THP variant of CVE-2020-29374 that 5.9 reopened, the pins 5.18 made worse, and the
hugetlb leaks cow.c still marks XFAIL. Every preset names its `backing`, so a view can group or
filter the library by it.
The expected outcome of every preset under every policy is derived by hand, with reasons, in
tests/engine/test_presets.py and tests/engine/huge_preset_expectations.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from textwrap import dedent
from types import MappingProxyType

from engine import huge_presets as huge
from engine.huge_presets import BACKINGS, PresetBacking

__all__ = ["BACKINGS", "PRESETS", "PresetBacking", "Preset"]


@dataclass(frozen=True, slots=True)
class Preset:
    """One scenario of the library.

    ``name`` is the URL-safe slug, ``title`` the selftest's own description where there is one,
    ``story`` what happens in kernel terms (2–4 sentences), ``source`` where the scenario comes
    from (selftest path and test number, commit, CVE or mail thread), ``text`` the scenario,
    ``backing`` the kind of page its memory is (`BACKINGS`: base page, PMD-mapped THP,
    PTE-mapped THP, hugetlb).
    """

    name: str
    title: str
    story: str
    source: str
    text: str
    backing: PresetBacking = "base"


COW_C = "tools/testing/selftests/mm/cow.c"


# The era each preset's story happens in: its `#policy` (DESIGN.md §8), so a link to a preset
# opens where its bug or its fix shows. A story that every era gets right opens in the newest.
_STORY_ERA = {
    "cow-basic": "6.2",
    "cow-basic-mprotect": "6.2",
    "dirty-cow": "4.8",
    "cve-2020-29374": "5.7",
    "cow-vmsplice-unmap-child": "5.7",
    "cow-vmsplice-unmap-child-mprotect": "5.7",
    "cow-vmsplice-unmap-child-swap": "5.9",
    "cow-vmsplice-before-fork": "5.8",
    "cow-vmsplice-before-fork-swap": "5.8",
    "cow-vmsplice-unmap-parent": "5.7",
    "cow-vmsplice-unmap-parent-swap": "5.7",
    "uffd-wp-read-gup": "5.8",
    "uffd-wp-wrong-side-ok": "5.8-wrong-side-ok",
    "wrong-side-ok-race": "5.8-wrong-side-ok",
    "rdma-pin-before-fork": "5.8",
    "cow-iouring-fork": "5.8",
    "cow-iouring-ro-mapping": "5.9",
    "cow-ro-pin-shared": "5.9",
    "cow-ro-pin-fast-shared": "5.9",
    "cow-ro-pin-previously-shared": "5.9",
    "cow-ro-pin-fast-previously-shared": "5.9",
    "cow-ro-pin-exclusive": "5.9",
    "cow-ro-pin-fast-exclusive": "5.9",
    "cow-zeropage-basic": "6.2",
    "cow-zeropage-ro-pin": "5.19",
    "cow-zeropage-ro-pin-fast": "5.19",
    "cow-memfd-basic": "6.2",
    "cow-memfd-ro-pin": "5.19",
    "cow-memfd-ro-pin-fast": "5.19",
}


def _preset(
    name: str,
    title: str,
    story: str,
    source: str,
    text: str,
    *,
    era: str = "",
    backing: PresetBacking = "base",
) -> Preset:
    # A preset is a small lesson: its text opens with its `#title` and `#policy`.
    head = f"#title {title}\n#policy {era or _STORY_ERA[name]}\n"
    return Preset(
        name=name,
        title=title,
        story=" ".join(story.split()),
        source=" ".join(source.split()),
        text=head + dedent(text).strip() + "\n",
        backing=backing,
    )


def _huge_presets() -> tuple[Preset, ...]:
    """cow.c's anonymous cases on each huge backing, one backing after the other and the cases
    in the selftest's order, as the selftest runs them."""
    return tuple(
        _preset(
            huge.preset_name(case, backing),
            huge.title(case, backing),
            story.story,
            huge.source(case, backing, story.source),
            huge.text(case, backing),
            era=story.era,
            backing=backing,
        )
        for backing in huge.HUGE_BACKINGS
        for case in huge.CASES
        for story in (huge.STORIES[(case.base, backing)],)
    )


_PRESETS: tuple[Preset, ...] = (
    # ── Classic COW ─────────────────────────────────────────────────────────────────────────
    _preset(
        "cow-basic",
        "Basic COW after fork() ... with base page",
        """The parent fills a private anonymous page and forks, so both processes map the same
        physical page read-only. When the parent writes, the write fault finds a page that two
        processes map and copies it, and the child keeps reading the old data. Every era gets this
        right: it is the baseline the other presets bend.""",
        f"{COW_C}, test 1 (base page); anon_cow selftests 69c66add5663 (6.1)",
        """
        P mmap mem
        P write mem v1          # populate the page: memset(mem, 1)
        P fork C                # the child shares the page copy-on-write
        C read mem              # the child backs up the content
        P write mem parent-v2   # the parent modifies the page: memset(mem, 0xff)
        C read mem              # the child compares: must still read v1
        """,
    ),
    _preset(
        "cow-basic-mprotect",
        "Basic COW after fork() with mprotect() optimization ... with base page",
        """The basic test again, but the parent makes the page read-only and then read-write before
        it writes. Since 6.0 mprotect() may map an exclusive anonymous page writable at once to save
        the next write fault, and it must never do so for a page still shared with a child. The
        page is not exclusive after fork(), so the write still faults and copies in every era.""",
        f"{COW_C}, test 2 (base page); mprotect optimisation 64fe24a3e05e (6.0)",
        """
        P mmap mem
        P write mem v1          # populate: memset(mem, 1)
        P fork C
        C read mem              # the child backs up the content
        P mprotect mem ro       # mprotect(PROT_READ) ...
        P mprotect mem rw       # ... and read-write: must not map the shared page writable
        P write mem parent-v2   # memset(mem, 0xff)
        C read mem              # must still read v1
        """,
    ),
    _preset(
        "dirty-cow",
        "Dirty COW (CVE-2016-5195): write to a read-only file through /proc/self/mem",
        """The attacker maps a file it may only read, private and read-only: still a COW mapping, so
        a forced write through /proc/self/mem must land in a private copy. Up to 4.8 the kernel
        recorded "COW done" by dropping FOLL_WRITE, and a racing MADV_DONTNEED throws the copy
        away, so the retried lookup, now a read, returns the page-cache page and the write
        corrupts the file for everyone. Since 4.9 FOLL_WRITE stays and a R/O PTE may only be
        written with FOLL_COW and a dirty PTE, so the retry makes a fresh copy.""",
        """CVE-2016-5195; fix 19be0eaffa3a "mm: remove gup_flags FOLL_WRITE games from
        __get_user_pages()" (Oct 2016, 4.9);
        https://github.com/dirtycow/dirtycow.github.io/wiki/VulnerabilityDetails""",
        """
        file F root-data                  # a root-owned file: everyone may read it, nobody write it
        reader mmap f file=F shared ro    # another process looks at the file
        reader read f                     # root-data
        attacker mmap a file=F ro         # MAP_PRIVATE, PROT_READ: no VM_WRITE, still a COW mapping
        attacker forcewrite a pwned race  # write() to /proc/self/mem racing madvise(MADV_DONTNEED)
        attacker read a                   # the attacker's private view: pwned
        reader read f                     # root-data, unless the page cache was corrupted
        """,
    ),
    # ── CVE-2020-29374 and the vmsplice() tests ─────────────────────────────────────────────
    _preset(
        "cve-2020-29374",
        "CVE-2020-29374: vmsplice() + munmap() in the child (Jann Horn's reproducer)",
        """Parent and child share a page after fork(). The child vmsplice()s the page into a pipe,
        which takes a read-only get_user_pages reference, and unmaps it. Up to 5.7 the parent's
        write fault sees mapcount 1 and reuses the page the pipe still holds, so the child reads the
        parent's secret out of the pipe. 5.8 breaks COW when vmsplice() takes the reference, and 5.9
        and later never reuse a page that has extra references.""",
        """CVE-2020-29374, Project Zero issue 2045 (Jann Horn, 27 May 2020); first fixed by
        17839856fd58 "gup: document and work around 'COW can break either way' issue" (5.8)""",
        """
        P mmap data
        P write data BORING-DATA      # strcpy(data, "BORING DATA")
        P fork C
        C vmsplice data as pipe       # the child takes a reference to the shared page ...
        C munmap data                 # ... and drops its own mapping
        P write data THIS-IS-SECRET   # the parent writes a secret into its private memory
        pipe read                     # the child reads the pipe: BORING-DATA, or the secret
        """,
    ),
    _preset(
        "cow-vmsplice-unmap-child",
        "vmsplice() + unmap in child ... with base page",
        """The selftest form of CVE-2020-29374. The child backs up the page, vmsplice()s it into a
        pipe, unmaps it and lets the parent write. The pipe must still hold the old data; up to 5.7
        the parent reuses the page the pipe references and the child reads the parent's write.""",
        f"{COW_C}, test 3 (base page); CVE-2020-29374",
        """
        P mmap mem
        P write mem v1          # populate: memset(mem, 1)
        P fork C
        C read mem              # the child backs up the content
        C vmsplice mem as pipe  # R/O GUP (FOLL_GET) reference held by the pipe
        C munmap mem            # unmap it from the child's page tables
        P write mem parent-v2   # the parent modifies the page
        pipe read               # the child reads the pipe and compares: must be v1
        """,
    ),
    _preset(
        "cow-vmsplice-unmap-child-mprotect",
        "vmsplice() + unmap in child with mprotect() optimization ... with base page",
        """The previous test with an mprotect(PROT_READ) and mprotect(PROT_READ|PROT_WRITE) round
        trip in the parent before it writes. The page is still referenced by the child's pipe and
        was shared at fork(), so it is not exclusive and mprotect() must leave it read-only. The
        write fault then decides exactly as in the plain test.""",
        f"{COW_C}, test 4 (base page)",
        """
        P mmap mem
        P write mem v1          # populate: memset(mem, 1)
        P fork C
        C read mem              # the child backs up the content
        C vmsplice mem as pipe  # R/O GUP (FOLL_GET) reference held by the pipe
        C munmap mem
        P mprotect mem ro       # mprotect(PROT_READ) ...
        P mprotect mem rw       # ... and back: must not map the page writable
        P write mem parent-v2
        pipe read               # must be v1
        """,
    ),
    _preset(
        "cow-vmsplice-unmap-child-swap",
        "vmsplice() + unmap in child ... with swapped out base page",
        """The page is paged out right after it is populated, so fork() duplicates a swap entry and
        the parent's write becomes a swap-in fault. Up to 5.17 do_swap_page() still decided with
        the mapcount+swapcount rule of reuse_swap_page(), so the leak that 5.9 closed for present
        pages stays open on this path. 5.18 (c145e0b47c77) moved swap-in to the page_count rule.""",
        f"{COW_C}, test 3 (swapped out base page); fix c145e0b47c77 (5.18)",
        """
        P mmap mem
        P write mem v1          # populate: memset(mem, 1)
        P swapout mem           # MADV_PAGEOUT: the parent's PTE becomes a swap entry
        P fork C                # fork() duplicates the swap entry
        C read mem              # the child backs up the content: swap-in, mapped read-only
        C vmsplice mem as pipe  # R/O GUP (FOLL_GET) reference held by the pipe
        C munmap mem
        P write mem parent-v2   # a swap-in write fault in the parent
        pipe read               # must be v1
        """,
    ),
    _preset(
        "cow-vmsplice-before-fork",
        "vmsplice() before fork(), unmap in parent after fork() ... with base page",
        """The parent vmsplice()s its own page into a pipe and only then forks, so the pipe's
        reference is older than the sharing. The parent unmaps the page and the child writes it.
        Up to 5.8 the child's write fault sees mapcount 1 and reuses the page the parent's pipe
        holds; 5.8's COW break at GUP time cannot help because the page was not shared yet. Since
        5.9 the pipe's extra reference makes the child copy.""",
        f"{COW_C}, test 5 (base page)",
        """
        P mmap mem
        P write mem v1          # populate: memset(mem, 1)
        P read mem              # the parent backs up the content
        P vmsplice mem as pipe  # R/O GUP (FOLL_GET) reference held by the pipe, before fork()
        P fork C
        P munmap mem            # the parent unmaps the page
        C write mem child-v2    # the child modifies it: memset(mem, 0xff)
        C exit
        pipe read               # the parent reads the pipe and compares: must be v1
        """,
    ),
    _preset(
        "cow-vmsplice-before-fork-swap",
        "vmsplice() before fork(), unmap in parent after fork() ... with swapped out base page",
        """The previous test with the page paged out right after it is populated; the parent's
        backup read swaps it back in read-only, and the page stays in the swap cache. The child's
        write is an ordinary write fault on a present page, so the eras decide as in the base-page
        test. The swap cache's extra reference is ignored by the mapcount rule and counted by the
        page_count rules.""",
        f"{COW_C}, test 5 (swapped out base page)",
        """
        P mmap mem
        P write mem v1          # populate: memset(mem, 1)
        P swapout mem           # MADV_PAGEOUT
        P read mem              # the parent backs up the content: swap-in, mapped read-only
        P vmsplice mem as pipe  # R/O GUP (FOLL_GET) reference held by the pipe, before fork()
        P fork C
        P munmap mem
        C write mem child-v2    # memset(mem, 0xff) in the child
        C exit
        pipe read               # must be v1
        """,
    ),
    _preset(
        "cow-vmsplice-unmap-parent",
        "vmsplice() + unmap in parent after fork() ... with base page",
        """The parent forks first, then vmsplice()s the shared page into a pipe, unmaps it and lets
        the child write. Up to 5.7 the child reuses the page the parent's pipe holds and the parent
        reads the child's data. 5.8 breaks COW at vmsplice() time, so the pipe holds the parent's
        own copy; 5.9 and later copy in the child because of the pipe's reference.""",
        f"{COW_C}, test 6 (base page)",
        """
        P mmap mem
        P write mem v1          # populate: memset(mem, 1)
        P read mem              # the parent backs up the content
        P fork C
        P vmsplice mem as pipe  # R/O GUP (FOLL_GET) on the now COW-shared page
        P munmap mem
        C write mem child-v2    # memset(mem, 0xff) in the child
        C exit
        pipe read               # must be v1
        """,
    ),
    _preset(
        "cow-vmsplice-unmap-parent-swap",
        "vmsplice() + unmap in parent after fork() ... with swapped out base page",
        """The previous test with the page paged out right after it is populated; the parent's
        backup read swaps it back in read-only before fork(). The child's write is an ordinary
        write fault on a present page that also sits in the swap cache, so the eras decide as in
        the base-page test.""",
        f"{COW_C}, test 6 (swapped out base page)",
        """
        P mmap mem
        P write mem v1          # populate: memset(mem, 1)
        P swapout mem           # MADV_PAGEOUT
        P read mem              # the parent backs up the content: swap-in, mapped read-only
        P fork C
        P vmsplice mem as pipe  # R/O GUP (FOLL_GET) on the COW-shared page
        P munmap mem
        C write mem child-v2
        C exit
        pipe read               # must be v1
        """,
    ),
    # ── The August 2020 seed: 5.8's forced COW break and the two proposals ──────────────────
    _preset(
        "uffd-wp-read-gup",
        "uffd-wp: read GUP of a write-protected page (umap)",
        """umap, a user-space pager, write-protects a page with userfaultfd and then writes the page
        out to its backing file, which reads it with a read-only get_user_pages. 5.8 turned every
        such read GUP on a COW mapping into a write, so the read raises a write-protect userfault,
        delivered to umap's own service thread: the very thread blocked in write(), so it
        deadlocks. Peter Xu proposed FAULT_FLAG_BREAK_COW, a COW break that is not a write.""",
        """Peter Xu, "[PATCH v2] mm/gup: Allow real explicit breaking of COW", 10 Aug 2020,
        20200810145701.129228-1-peterx@redhat.com (umap/umapsort, LLNL); regression of
        17839856fd58 (5.8)""",
        """
        P mmap page
        P write page v1         # the page is populated
        P uffd-wp page on       # umap's service thread write-protects it before paging it out
        P get page ro as dio    # write() to the backing file: a read-only GUP (FOLL_GET)
        P read page             # the data itself is v1 in every era
        """,
    ),
    _preset(
        "uffd-wp-wrong-side-ok",
        "READ_WRONG_SIDE_COW_OK: the same read GUP, opting out of the COW break",
        """Linus' answer to Peter Xu: keep breaking COW for every read GUP by default, and let a
        caller that can live with ending up on "the wrong side" of a later COW say so with
        READ_WRONG_SIDE_COW_OK. Under that proposal this GUP breaks nothing and raises no
        userfault, while plain 5.8 ignores the flag and faults anyway. Neither proposal was merged:
        5.9 removed the forced COW break altogether.""",
        """Linus Torvalds, reply to "[PATCH v2] mm/gup: Allow real explicit breaking of COW",
        10 Aug 2020, CAHk-=wiSF+aKhDOewxQGCGUPyGnA=K7OtAczL5M7aisA5mgFzg""",
        """
        P mmap page
        P write page v1
        P uffd-wp page on                   # write-protected with userfaultfd, as before
        P get page ro as dio wrong-side-ok  # the same read GUP, saying the wrong side is fine
        P read page                         # v1 in every era
        """,
    ),
    _preset(
        "wrong-side-ok-race",
        "READ_WRONG_SIDE_COW_OK: what the wrong side is (Linus' race)",
        """Why "only reading" does not excuse a read GUP from breaking COW: A and B share a page, A
        takes a read GUP that opts out of the COW break, another thread of A unmaps the page, and B
        writes. Under the mapcount rule B now maps the page alone and reuses it, so A's reference
        reads data A never wrote. This is what a caller accepts with READ_WRONG_SIDE_COW_OK.""",
        """Linus Torvalds, replies of 10 Aug 2020 in the thread of Peter Xu's "[PATCH v2] mm/gup:
        Allow real explicit breaking of COW" (20200810145701.129228-1-peterx@redhat.com)""",
        """
        P mmap mem
        P write mem v1
        P fork C                            # A (P) and B (C) share a COW page
        P get mem ro as dio wrong-side-ok   # A read-GUPs it and accepts the wrong side
        P munmap mem                        # another thread of A unmaps it
        C write mem child-v2                # B writes: A no longer maps the page
        dio read                            # A's reference: v1, or data A never wrote
        """,
    ),
    # ── 5.9: pinned pages and fork() ────────────────────────────────────────────────────────
    _preset(
        "rdma-pin-before-fork",
        "RDMA: R/W long-term pin before fork(), DMA lands in the child",
        """An RDMA application registers a buffer, a writable long-term pin for the NIC, and later
        forks, for example to run a helper. Up to 5.8 fork() shares the pinned page, the parent's
        next write copies it away, and the NIC keeps writing into the old page, which now belongs to
        the child. Since 5.9 fork() copies pinned pages for the child right away, so the parent
        keeps the page the NIC writes.""",
        """MADV_DONTFORK (2.6.16) history; Jason Gunthorpe, RDMA regression
        20200914143829.GA1424636@nvidia.com; fix 70e806e4e645 "mm: Do early cow for pinned pages
        during fork() for ptes" (5.9)""",
        """
        P mmap buf
        P write buf v1                # the application fills its buffer
        P pin buf rw longterm as mr   # ibv_reg_mr(): R/W long-term pin for the NIC
        P fork C                      # e.g. system(): the child stays around
        P write buf parent-v2         # the parent keeps using its buffer
        mr write dma-data             # the NIC DMAs incoming data into the pinned page
        C read buf                    # the child must still read v1
        P read buf                    # the parent must read the DMA'd data
        """,
    ),
    _preset(
        "cow-iouring-fork",
        "fork() with an iouring fixed buffer ... with base page",
        """The page is registered as an io_uring fixed buffer, a writable long-term pin, and the
        process forks while the child stays alive. The parent then writes and io_uring writes the
        buffer out to a file: the file must hold what the parent wrote. Up to 5.8 fork() shares the
        pinned page and the parent's write copies away from the pin; since 5.9 the child gets its
        own copy at fork() time.""",
        f"{COW_C}, test 8 (base page); fix 70e806e4e645 (5.9)",
        """
        P mmap mem
        P write mem v1          # populate: memset(mem, 1)
        P iouring mem as fixed  # io_uring_register_buffers(): FOLL_PIN|FOLL_WRITE|FOLL_LONGTERM
        P fork C                # the child stays alive until the end
        P write mem parent-v2   # memset(mem, 0xff)
        fixed read              # WRITE_FIXED to a file, read back: must be parent-v2
        """,
    ),
    _preset(
        "cow-iouring-ro-mapping",
        "R/O-mapping a page registered as iouring fixed buffer ... with base page",
        """No fork at all: the page is registered as an io_uring fixed buffer, then mapped
        read-only and read-write again, with soft-dirty tracking so mprotect() cannot map it
        writable at once. The next write faults on the process's own pinned page. 5.9 to 5.18 see
        page_count > 1 and copy away from the pin, a "wrong COW"; 5.19's exclusive bit lets the
        write reuse the page.""",
        f"{COW_C}, test 7 (base page); PageAnonExclusive 6c287605fd56 (5.19)",
        """
        P mmap mem
        P write mem v1          # populate: memset(mem, 1)
        P iouring mem as fixed  # io_uring_register_buffers(): FOLL_PIN|FOLL_WRITE|FOLL_LONGTERM
        P mprotect mem ro       # map the page R/O into the page table ...
        P clear-softdirty       # ... with soft-dirty tracking, so mprotect() cannot undo it ...
        P mprotect mem rw       # ... and allow writes again: the PTE stays read-only
        P write mem parent-v2   # memset(mem, 0xff): a write fault on a pinned, exclusive page
        fixed read              # WRITE_FIXED to a file, read back: must be parent-v2
        """,
    ),
    # ── 5.19: reliable R/O pins of anonymous pages (FAULT_FLAG_UNSHARE) ─────────────────────
    _preset(
        "cow-ro-pin-shared",
        "R/O GUP pin on R/O-mapped shared page ... with base page",
        """The parent forks, the child stays alive, and the page is mapped read-only by both; then
        the parent takes a read-only long-term pin, as for a device that will read the memory. The
        parent writes and reads the page back through the pin. Unless pinning unshared the page
        first, the write copies the page away from the pin and the device reads stale data; 5.8 got
        this right by breaking COW at pin time, 5.19 by FAULT_FLAG_UNSHARE.""",
        f"{COW_C}, test 9 (base page); unshare on R/O pin a7f226604170, c89357e27f20 (5.19)",
        """
        P mmap mem
        P write mem v1                # populate: memset(mem, 1)
        P fork C                      # the child stays alive: the page is COW-shared, R/O in both
        P pin mem ro longterm as pin  # gup_test PIN_LONGTERM_TEST_START (pin_user_pages)
        P write mem parent-v2         # memset(mem, 0xff)
        pin read                      # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    _preset(
        "cow-ro-pin-fast-shared",
        "R/O GUP-fast pin on R/O-mapped shared page ... with base page",
        """The previous test with pin_user_pages_fast(). GUP-fast walks the page tables without
        faulting, so whenever the era wants to break or unshare COW for this pin it must give up
        and fall back to the slow path. The outcome is the slow path's in every era.""",
        f"{COW_C}, test 10 (base page)",
        """
        P mmap mem
        P write mem v1                     # populate: memset(mem, 1)
        P fork C                           # the child stays alive: the page is COW-shared
        P pin mem ro longterm fast as pin  # PIN_LONGTERM_TEST_START with FLAG_USE_FAST
        P write mem parent-v2              # memset(mem, 0xff)
        pin read                           # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    _preset(
        "cow-ro-pin-previously-shared",
        "R/O GUP pin on R/O-mapped previously-shared page ... with base page",
        """The child exits before the pin is taken, so the parent is the page's only user, but its
        PTE is still read-only and since 5.19 the page is no longer marked exclusive. From 5.9 to
        5.18 the later write fault decides by page_count, which the pin has raised past 1024, so the
        parent copies away from its own pin. 5.19's unshare fault sees a refcount of 1, marks the
        page exclusive without copying, and the write then reuses it.""",
        f"{COW_C}, test 11 (base page)",
        """
        P mmap mem
        P write mem v1                # populate: memset(mem, 1)
        P fork C
        C exit                        # the child quits: mapped only by the parent, still R/O
        P pin mem ro longterm as pin  # PIN_LONGTERM_TEST_START
        P write mem parent-v2         # memset(mem, 0xff)
        pin read                      # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    _preset(
        "cow-ro-pin-fast-previously-shared",
        "R/O GUP-fast pin on R/O-mapped previously-shared page ... with base page",
        """The previous test with pin_user_pages_fast(). Where an era has to fault before it may
        pin, GUP-fast falls back to the slow path, so every era ends as in the slow-path test.""",
        f"{COW_C}, test 12 (base page)",
        """
        P mmap mem
        P write mem v1                     # populate: memset(mem, 1)
        P fork C
        C exit                             # the child quits: mapped only by the parent, still R/O
        P pin mem ro longterm fast as pin  # PIN_LONGTERM_TEST_START with FLAG_USE_FAST
        P write mem parent-v2              # memset(mem, 0xff)
        pin read                           # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    _preset(
        "cow-ro-pin-exclusive",
        "R/O GUP pin on R/O-mapped exclusive page ... with base page",
        """No fork: the page was only ever the parent's, but an mprotect() round trip with
        soft-dirty tracking leaves its PTE read-only. A read-only pin followed by a write must
        still agree. From 5.9 to 5.18 the write fault only sees page_count > 1 and copies away from
        the process's own pin; 5.19 knows the page is exclusive and reuses it.""",
        f"{COW_C}, test 13 (base page)",
        """
        P mmap mem
        P write mem v1                # populate: memset(mem, 1)
        P mprotect mem ro             # map the page R/O into the page table ...
        P clear-softdirty             # ... with soft-dirty tracking, so mprotect() keeps it R/O ...
        P mprotect mem rw             # ... and allow writes again: the PTE stays R/O
        P pin mem ro longterm as pin  # PIN_LONGTERM_TEST_START
        P write mem parent-v2         # memset(mem, 0xff)
        pin read                      # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    _preset(
        "cow-ro-pin-fast-exclusive",
        "R/O GUP-fast pin on R/O-mapped exclusive page ... with base page",
        """The previous test with pin_user_pages_fast(). An exclusive page needs no unsharing, so
        GUP-fast may pin it straight from the read-only PTE from 5.19 on.""",
        f"{COW_C}, test 14 (base page)",
        """
        P mmap mem
        P write mem v1                     # populate: memset(mem, 1)
        P mprotect mem ro                  # map the page R/O into the page table ...
        P clear-softdirty                  # ... with soft-dirty tracking ...
        P mprotect mem rw                  # ... and allow writes again: the PTE stays R/O
        P pin mem ro longterm fast as pin  # PIN_LONGTERM_TEST_START with FLAG_USE_FAST
        P write mem parent-v2              # memset(mem, 0xff)
        pin read                           # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    # ── 6.2: reliable R/O long-term pins of anything in a COW mapping ───────────────────────
    _preset(
        "cow-zeropage-basic",
        "Basic COW ... with shared zeropage",
        """A never-written private anonymous page reads as the shared zero page, mapped read-only
        into every such mapping. Writing one mapping must give it a fresh page and never touch the
        zero page, so the other mapping keeps reading zeroes. Every era does this.""",
        f"{COW_C}, test 19 (shared zeropage); non-anon tests 84209e87c696 series (6.2)",
        """
        P mmap mem smem
        P mprotect smem ro      # smem: a second, read-only private anonymous mapping
        P read mem              # read faults map the shared zeropage ...
        P read smem             # ... into both mappings (smem is also the backup)
        P write mem parent-v2   # memset(mem, 0xff)
        P read smem             # "Other mapping not modified": must still read 0
        """,
    ),
    _preset(
        "cow-zeropage-ro-pin",
        "R/O longterm GUP pin ... with shared zeropage",
        """A read-only long-term pin of a never-written page pins the shared zero page itself. The
        process's first write then maps a fresh page and the pin keeps reading zeroes. Only 6.2
        (84209e87c696) unshares the zero page into a private anonymous copy before pinning; 5.8 got
        it right by accident, breaking COW at pin time.""",
        f"{COW_C}, test 20 (shared zeropage); fix 84209e87c696, 8d6a0ac09a16 (6.2)",
        """
        P mmap mem smem
        P mprotect smem ro            # smem: a second, read-only private anonymous mapping
        P read mem                    # both mappings map the shared zeropage
        P read smem
        P pin mem ro longterm as pin  # PIN_LONGTERM_TEST_START
        P write mem parent-v2         # memset(mem, 0xff)
        pin read                      # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    _preset(
        "cow-zeropage-ro-pin-fast",
        "R/O longterm GUP-fast pin ... with shared zeropage",
        """The previous test with pin_user_pages_fast(). Where the era unshares or breaks COW for
        this pin, GUP-fast falls back to the slow path, so the outcome is the slow path's.""",
        f"{COW_C}, test 21 (shared zeropage)",
        """
        P mmap mem smem
        P mprotect smem ro                 # smem: a second, read-only private anonymous mapping
        P read mem                         # both mappings map the shared zeropage
        P read smem
        P pin mem ro longterm fast as pin  # PIN_LONGTERM_TEST_START with FLAG_USE_FAST
        P write mem parent-v2              # memset(mem, 0xff)
        pin read                           # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    _preset(
        "cow-memfd-basic",
        "Basic COW ... with memfd",
        """A memfd is mapped twice: privately read-write and shared read-only, and both mappings map
        the same page-cache page. Writing the private mapping must copy the page into a private
        anonymous page and leave the page cache alone. Every era does this.""",
        f"{COW_C}, test 19 (memfd)",
        """
        file F file-data              # the memfd's page (cow.c fallocate()s zeroes; we name it)
        P mmap mem file=F             # MAP_PRIVATE, PROT_READ|PROT_WRITE
        P mmap smem file=F shared ro  # MAP_SHARED, PROT_READ
        P read mem                    # fault the page-cache page in, read-only, in both mappings
        P read smem
        P write mem parent-v2         # memset(mem, 0xff): the private mapping gets its own copy
        P read smem                   # "Other mapping not modified": must still read file-data
        """,
    ),
    _preset(
        "cow-memfd-ro-pin",
        "R/O longterm GUP pin ... with memfd",
        """A read-only long-term pin of a private file mapping pins the page-cache page itself. The
        process's first write then copies the page into a private anonymous page, and the pin keeps
        reading the file. 6.2 unshares the page-cache page into an anonymous copy before pinning;
        5.8 broke COW at pin time.""",
        f"{COW_C}, test 20 (memfd); fix 84209e87c696 (6.2)",
        """
        file F file-data              # the memfd's page
        P mmap mem file=F             # MAP_PRIVATE, PROT_READ|PROT_WRITE
        P mmap smem file=F shared ro  # MAP_SHARED, PROT_READ
        P read mem                    # fault the page-cache page in
        P read smem
        P pin mem ro longterm as pin  # PIN_LONGTERM_TEST_START
        P write mem parent-v2         # memset(mem, 0xff)
        pin read                      # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    _preset(
        "cow-memfd-ro-pin-fast",
        "R/O longterm GUP-fast pin ... with memfd",
        """The previous test with pin_user_pages_fast(). Where the era unshares or breaks COW for
        this pin, GUP-fast falls back to the slow path, so the outcome is the slow path's.""",
        f"{COW_C}, test 21 (memfd)",
        """
        file F file-data                   # the memfd's page
        P mmap mem file=F                  # MAP_PRIVATE, PROT_READ|PROT_WRITE
        P mmap smem file=F shared ro       # MAP_SHARED, PROT_READ
        P read mem                         # fault the page-cache page in
        P read smem
        P pin mem ro longterm fast as pin  # PIN_LONGTERM_TEST_START with FLAG_USE_FAST
        P write mem parent-v2              # memset(mem, 0xff)
        pin read                           # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
)

PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in _PRESETS + _huge_presets()})
"""Every preset by name, in teaching order (iteration follows insertion order)."""
