"""cow.c's anonymous cases on huge pages: the data engine/presets.py builds those presets from.

tools/testing/selftests/mm/cow.c runs each anonymous case (run_anon_test_case) on a base page and
then on every THP size and every hugetlb size. cowlab has the 2 MiB PMD size of x86-64 and arm64
with 4 KiB pages (DESIGN.md §10), so each case comes three more times, titled as the selftest
announces them:
- "... with THP (2048 kB)": `P mmap mem backing=thp`, populated by a write, so one PMD maps
  the whole folio (cow.c's THP_RUN_PMD);
- "... with PTE-mapped THP (2048 kB)": the same, then `P pte-map mem` (cow.c mprotect()s one
  subpage read-only and back: the PMD is split into PTEs, the folio stays whole; THP_RUN_PTE);
- "... with hugetlb (2048 kB)": `P mmap mem backing=hugetlb` (run_with_hugetlb, MAP_HUGETLB).
The case's own steps are the base-page preset's, written once per case here. Reads and writes
touch the folio's first subpage, where cow.c's memset() starts.

The selftest's other THP runs (single PTE, partially mremap()'ed, partially shared) need what
the scenario language does not have, said in `NOT_EXPRESSIBLE`; they are not presets, since an
approximation would teach the wrong counters. The expected outcomes of every preset built from
here are derived by hand in tests/engine/huge_preset_expectations.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

PresetBacking = Literal["base", "thp", "pte-thp", "hugetlb"]

BACKINGS: Mapping[PresetBacking, str] = MappingProxyType(
    {
        "base": "base page",
        "thp": "THP (2048 kB)",
        "pte-thp": "PTE-mapped THP (2048 kB)",
        "hugetlb": "hugetlb (2048 kB)",
    }
)
"""Each backing and how the selftest names it in its "[RUN] <case> ... with <backing>" lines.
"base" covers every 4 KiB page (anonymous, swapped out, the zero page, the page cache): the
presets grid groups by the size and mapping of the page, not by where its data lives."""

HUGE_BACKINGS: tuple[PresetBacking, ...] = ("thp", "pte-thp", "hugetlb")

# The lines that populate `mem` on each backing: cow.c's do_run_with_thp / run_with_hugetlb.
_SETUP: Mapping[PresetBacking, str] = MappingProxyType(
    {
        "thp": """
            P mmap mem backing=thp  # a THP-aligned 2 MiB range with MADV_HUGEPAGE
            P write mem v1          # populate: the first write fault maps a THP by one PMD
            """,
        "pte-thp": """
            P mmap mem backing=thp  # a THP-aligned 2 MiB range with MADV_HUGEPAGE
            P write mem v1          # populate: the first write fault maps a THP by one PMD
            P pte-map mem           # mprotect() one subpage R/O and back: 512 PTEs, one folio
            """,
        "hugetlb": """
            P mmap mem backing=hugetlb  # MAP_PRIVATE|MAP_HUGETLB: a 2 MiB hugetlb page
            P write mem v1              # populate: memset(mem, 1)
            """,
    }
)

_SOURCE_BACKING: Mapping[PresetBacking, str] = MappingProxyType(
    {"thp": "PMD-mapped THP", "pte-thp": "PTE-mapped THP", "hugetlb": "hugetlb"}
)


@dataclass(frozen=True, slots=True)
class HugeCase:
    """One of cow.c's anonymous cases: the base-page preset it extends, the selftest's
    description and number (kernel-cow-semantics.md §4.2), and its steps after the populate."""

    base: str  # the base-page preset's name: the huge presets are `<base>-<backing>`
    description: str
    number: int
    steps: str


@dataclass(frozen=True, slots=True)
class HugeStory:
    era: str  # the `#policy` the preset opens in: where its bug or its fix shows
    story: str
    source: str = ""  # commits beyond the selftest's own


CASES: tuple[HugeCase, ...] = (
    HugeCase(
        "cow-basic",
        "Basic COW after fork()",
        1,
        """
        P fork C
        C read mem              # the child backs up the content
        P write mem parent-v2   # the parent modifies the page: memset(mem, 0xff)
        C read mem              # the child compares: must still read v1
        """,
    ),
    HugeCase(
        "cow-basic-mprotect",
        "Basic COW after fork() with mprotect() optimization",
        2,
        """
        P fork C
        C read mem              # the child backs up the content
        P mprotect mem ro       # mprotect(PROT_READ) ...
        P mprotect mem rw       # ... and read-write: must not map the shared page writable
        P write mem parent-v2   # memset(mem, 0xff)
        C read mem              # must still read v1
        """,
    ),
    HugeCase(
        "cow-vmsplice-unmap-child",
        "vmsplice() + unmap in child",
        3,
        """
        P fork C
        C read mem              # the child backs up the content
        C vmsplice mem as pipe  # R/O GUP (FOLL_GET) reference held by the pipe
        C munmap mem            # unmap it from the child's page tables
        P write mem parent-v2   # the parent modifies the page
        pipe read               # the child reads the pipe and compares: must be v1
        """,
    ),
    HugeCase(
        "cow-vmsplice-unmap-child-mprotect",
        "vmsplice() + unmap in child with mprotect() optimization",
        4,
        """
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
    HugeCase(
        "cow-vmsplice-before-fork",
        "vmsplice() before fork(), unmap in parent after fork()",
        5,
        """
        P read mem              # the parent backs up the content
        P vmsplice mem as pipe  # R/O GUP (FOLL_GET) reference held by the pipe, before fork()
        P fork C
        P munmap mem            # the parent unmaps the page
        C write mem child-v2    # the child modifies it: memset(mem, 0xff)
        C exit
        pipe read               # the parent reads the pipe and compares: must be v1
        """,
    ),
    HugeCase(
        "cow-vmsplice-unmap-parent",
        "vmsplice() + unmap in parent after fork()",
        6,
        """
        P read mem              # the parent backs up the content
        P fork C
        P vmsplice mem as pipe  # R/O GUP (FOLL_GET) on the now COW-shared page
        P munmap mem
        C write mem child-v2    # memset(mem, 0xff) in the child
        C exit
        pipe read               # must be v1
        """,
    ),
    HugeCase(
        "cow-iouring-ro-mapping",
        "R/O-mapping a page registered as iouring fixed buffer",
        7,
        """
        P iouring mem as fixed  # io_uring_register_buffers(): FOLL_PIN|FOLL_WRITE|FOLL_LONGTERM
        P mprotect mem ro       # map the page R/O into the page table ...
        P clear-softdirty       # ... with soft-dirty tracking, so mprotect() cannot undo it ...
        P mprotect mem rw       # ... and allow writes again: the mapping stays read-only
        P write mem parent-v2   # memset(mem, 0xff): a write fault on a pinned, exclusive page
        fixed read              # WRITE_FIXED to a file, read back: must be parent-v2
        """,
    ),
    HugeCase(
        "cow-iouring-fork",
        "fork() with an iouring fixed buffer",
        8,
        """
        P iouring mem as fixed  # io_uring_register_buffers(): FOLL_PIN|FOLL_WRITE|FOLL_LONGTERM
        P fork C                # the child stays alive until the end
        P write mem parent-v2   # memset(mem, 0xff)
        fixed read              # WRITE_FIXED to a file, read back: must be parent-v2
        """,
    ),
    HugeCase(
        "cow-ro-pin-shared",
        "R/O GUP pin on R/O-mapped shared page",
        9,
        """
        P fork C                      # the child stays alive: the page is COW-shared
        P pin mem ro longterm as pin  # gup_test PIN_LONGTERM_TEST_START (pin_user_pages)
        P write mem parent-v2         # memset(mem, 0xff)
        pin read                      # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    HugeCase(
        "cow-ro-pin-fast-shared",
        "R/O GUP-fast pin on R/O-mapped shared page",
        10,
        """
        P fork C                           # the child stays alive: the page is COW-shared
        P pin mem ro longterm fast as pin  # PIN_LONGTERM_TEST_START with FLAG_USE_FAST
        P write mem parent-v2              # memset(mem, 0xff)
        pin read                           # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    HugeCase(
        "cow-ro-pin-previously-shared",
        "R/O GUP pin on R/O-mapped previously-shared page",
        11,
        """
        P fork C
        C exit                        # the child quits: mapped only by the parent, still R/O
        P pin mem ro longterm as pin  # PIN_LONGTERM_TEST_START
        P write mem parent-v2         # memset(mem, 0xff)
        pin read                      # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    HugeCase(
        "cow-ro-pin-fast-previously-shared",
        "R/O GUP-fast pin on R/O-mapped previously-shared page",
        12,
        """
        P fork C
        C exit                             # the child quits: mapped only by the parent, R/O
        P pin mem ro longterm fast as pin  # PIN_LONGTERM_TEST_START with FLAG_USE_FAST
        P write mem parent-v2              # memset(mem, 0xff)
        pin read                           # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    HugeCase(
        "cow-ro-pin-exclusive",
        "R/O GUP pin on R/O-mapped exclusive page",
        13,
        """
        P mprotect mem ro             # map the page R/O into the page table ...
        P clear-softdirty             # ... with soft-dirty tracking, so mprotect() keeps it R/O
        P mprotect mem rw             # ... and allow writes again: the mapping stays R/O
        P pin mem ro longterm as pin  # PIN_LONGTERM_TEST_START
        P write mem parent-v2         # memset(mem, 0xff)
        pin read                      # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
    HugeCase(
        "cow-ro-pin-fast-exclusive",
        "R/O GUP-fast pin on R/O-mapped exclusive page",
        14,
        """
        P mprotect mem ro                  # map the page R/O into the page table ...
        P clear-softdirty                  # ... with soft-dirty tracking ...
        P mprotect mem rw                  # ... and allow writes again: the mapping stays R/O
        P pin mem ro longterm fast as pin  # PIN_LONGTERM_TEST_START with FLAG_USE_FAST
        P write mem parent-v2              # memset(mem, 0xff)
        pin read                           # PIN_LONGTERM_TEST_READ: must be parent-v2
        """,
    ),
)

_FAST = """The previous test with pin_user_pages_fast(). GUP-fast walks the page tables without
faulting, so wherever the era must break or unshare COW first it falls back to the slow path,
and the outcome is the slow path's."""

_THP_FIX = "THP hole: 09854ba94c6a (5.9) left do_huge_pmd_wp_page() on the mapcount rule"
_THP_518 = "3bff7e3f1f16 mm/huge_memory: streamline COW logic in do_huge_pmd_wp_page() (5.18)"
_XFAIL = "XFAIL in cow.c (hugetlb tests 7dad331be781)"

STORIES: Mapping[tuple[str, PresetBacking], HugeStory] = MappingProxyType(
    {
        # ── PMD-mapped THP ──────────────────────────────────────────────────────────────────
        ("cow-basic", "thp"): HugeStory(
            "6.2",
            """The basic test on a 2 MiB transparent huge page mapped by one PMD. fork() shares the
            whole folio by the PMD, and the parent's write fault finds it mapped twice. Up to 5.7
            the parent copies the whole THP, since 5.8 it splits the PMD and copies only the
            subpage it wrote; either way the child keeps the old data in every era.""",
            "3917c80280c9 thp: change CoW semantics for anon-THP (5.8)",
        ),
        ("cow-basic-mprotect", "thp"): HugeStory(
            "6.2",
            """The mprotect() round trip on a PMD-mapped THP shared with a child. Since 6.0
            mprotect() may map an exclusive anonymous PMD writable at once, and the THP lost its
            exclusive bit when fork() shared it. So the parent's write still faults and copies in
            every era.""",
            "mprotect optimisation 64fe24a3e05e (6.0)",
        ),
        ("cow-vmsplice-unmap-child", "thp"): HugeStory(
            "5.9",
            """CVE-2020-29374 on a THP. 5.9 closed the leak for small pages by reusing only a page
            with refcount 1, but do_huge_pmd_wp_page() kept counting mappings: after the child
            unmaps, the parent reuses the huge page the pipe still references, and the child
            reads the parent's write. 5.18 moved the PMD path to the refcount rule too.""",
            f"CVE-2020-29374; {_THP_FIX}; fix {_THP_518}",
        ),
        ("cow-vmsplice-unmap-child-mprotect", "thp"): HugeStory(
            "5.9",
            """The previous test with an mprotect() round trip in the parent before it writes. The
            THP is not exclusive after fork(), so mprotect() leaves the PMD read-only and the
            write fault decides as in the plain test: 5.9 to 5.17 reuse the huge page that the
            child's pipe still holds.""",
            f"{_THP_FIX}; fix {_THP_518}",
        ),
        ("cow-vmsplice-before-fork", "thp"): HugeStory(
            "5.9",
            """The parent vmsplice()s its THP, forks, unmaps it, and the child writes. The pipe's
            reference is a FOLL_GET, not a pin, so fork() shares the PMD, and up to 5.17 the
            child's write fault counts one mapping and reuses the huge page the parent's pipe
            holds. 5.18 copies because the folio's refcount counts the pipe.""",
            f"{_THP_FIX}; fix {_THP_518}",
        ),
        ("cow-vmsplice-unmap-parent", "thp"): HugeStory(
            "5.9",
            """The parent forks, vmsplice()s the shared THP and unmaps it; then the child writes.
            5.8 broke COW when vmsplice() took its reference, but 5.9 dropped that and left the
            PMD path on the mapcount rule. So the child reuses the huge page and the parent's
            pipe reads the child's data until 5.18.""",
            f"{_THP_FIX}; fix {_THP_518}",
        ),
        ("cow-iouring-ro-mapping", "thp"): HugeStory(
            "5.18",
            """A THP registered as an io_uring fixed buffer is mapped read-only and read-write
            again, then written. Up to 5.17 do_huge_pmd_wp_page() counted only mappings and
            reused the pinned THP, exactly what the pin needs. 5.18 decides by refcount, which the
            pin raises, so it splits the PMD and copies away from the process's own pin; 5.19's
            exclusive bit reuses it again.""",
            f'{_THP_518} (its cover letter: "certainly makes (2) worse for THP"); '
            "PageAnonExclusive 6c287605fd56 (5.19)",
        ),
        ("cow-iouring-fork", "thp"): HugeStory(
            "5.8",
            """A THP registered as an io_uring fixed buffer, then fork() with the child kept
            alive. Up to 5.8 fork() shares the pinned PMD and the parent's write copies away from
            the pin. Since 5.9 copy_huge_pmd() splits a pinned PMD and copies every subpage for
            the child, so the parent keeps the THP the pin holds.""",
            'fix d042035eaf5f "mm/thp: Split huge pmds/puds if they\'re pinned when fork()" (5.9)',
        ),
        ("cow-ro-pin-shared", "thp"): HugeStory(
            "5.9",
            """A read-only long-term pin of a THP that a live child shares by its PMD, then a write
            by the parent. Unless pinning unshares first, the write copies away from the pin.
            5.8 broke COW at pin time; 5.19 unshares the PMD-mapped THP (FAULT_FLAG_UNSHARE in
            do_huge_pmd_wp_page()), splitting the PMD and pinning a private copy of the
            subpage.""",
            "unshare on R/O pin a7f226604170, c89357e27f20 (5.19)",
        ),
        ("cow-ro-pin-fast-shared", "thp"): HugeStory("5.9", _FAST),
        ("cow-ro-pin-previously-shared", "thp"): HugeStory(
            "5.18",
            """The child exits before the pin, so the parent alone maps the THP, by a read-only
            PMD. Up to 5.17 the PMD write fault counts one mapping and reuses the pinned THP. 5.18
            sees the pin in the refcount, splits the PMD and copies away from it; 5.19's unshare
            fault marks the THP exclusive without copying.""",
            _THP_518,
        ),
        ("cow-ro-pin-fast-previously-shared", "thp"): HugeStory("5.18", _FAST),
        ("cow-ro-pin-exclusive", "thp"): HugeStory(
            "5.18",
            """No fork: the THP was only ever the parent's, but an mprotect() round trip with
            soft-dirty tracking leaves its PMD read-only. A read-only pin and a later write must
            still agree. The mapping count up to 5.17 reuses the THP, 5.18's refcount rule copies
            away from the pin, and 5.19 reuses the exclusive THP.""",
            _THP_518,
        ),
        ("cow-ro-pin-fast-exclusive", "thp"): HugeStory(
            "5.18",
            """The previous test with pin_user_pages_fast(). An exclusive THP needs no unsharing,
            so GUP-fast may pin it straight from the read-only PMD from 5.19 on.""",
        ),
        # ── PTE-mapped THP ──────────────────────────────────────────────────────────────────
        ("cow-basic", "pte-thp"): HugeStory(
            "6.2",
            """The THP is PTE-mapped first: the folio stays whole, but 512 PTEs map it. fork()
            shares every subpage, and the parent's write fault on subpage 0 copies just that
            subpage in every era. The child keeps the old data.""",
        ),
        ("cow-basic-mprotect", "pte-thp"): HugeStory(
            "6.2",
            """The mprotect() round trip on a PTE-mapped THP shared with a child. Its subpages lost
            their exclusive bits at fork(), so mprotect() cannot map them writable and the write
            still copies.""",
        ),
        ("cow-vmsplice-unmap-child", "pte-thp"): HugeStory(
            "5.7",
            """CVE-2020-29374 on a PTE-mapped THP. Up to 5.7 the parent's write fault counts the
            subpage's single mapping and reuses it under the child's pipe. From 5.9 a subpage of
            a PTE-mapped THP is never reused by the refcount rule, since the folio's refcount
            counts all 512 PTEs, so unlike the PMD-mapped THP there is no hole in 5.9.""",
            "CVE-2020-29374",
        ),
        ("cow-vmsplice-unmap-child-mprotect", "pte-thp"): HugeStory(
            "5.7",
            """The previous test with an mprotect() round trip in the parent before it writes. The
            subpage is not exclusive, so its PTE stays read-only and the write fault decides as in
            the plain test.""",
        ),
        ("cow-vmsplice-before-fork", "pte-thp"): HugeStory(
            "5.8",
            """The parent vmsplice()s its PTE-mapped THP, forks, unmaps it, and the child writes.
            Up to 5.8 the child's write fault counts one mapping of the subpage and reuses it, so
            the parent's pipe reads the child's data. Since 5.9 the extra references make the
            child copy.""",
        ),
        ("cow-vmsplice-unmap-parent", "pte-thp"): HugeStory(
            "5.7",
            """The parent forks, vmsplice()s the shared PTE-mapped THP and unmaps it; then the
            child writes. Up to 5.7 the child reuses the subpage the parent's pipe holds. 5.8
            breaks COW at vmsplice() time and later eras copy, so the pipe keeps the old data.""",
        ),
        ("cow-iouring-ro-mapping", "pte-thp"): HugeStory(
            "5.9",
            """A PTE-mapped THP registered as an io_uring fixed buffer is mapped read-only and
            read-write again, then written. From 5.9 to 5.18 the write fault needs refcount 1,
            which a PTE-mapped THP never has, so the process copies away from its own pin. 5.19
            reuses the subpage, which inherited the THP's exclusive bit when the PMD was split.""",
            "PageAnonExclusive 6c287605fd56 (5.19)",
        ),
        ("cow-iouring-fork", "pte-thp"): HugeStory(
            "5.8",
            """A PTE-mapped THP registered as an io_uring fixed buffer, then fork() with the child
            kept alive. Up to 5.8 fork() shares the pinned subpages and the parent's write copies
            away from the pin. Since 5.9 the folio's exact pin count marks every subpage as maybe
            pinned, so fork() copies them for the child.""",
            'fix 70e806e4e645 "mm: Do early cow for pinned pages during fork() for ptes" (5.9)',
        ),
        ("cow-ro-pin-shared", "pte-thp"): HugeStory(
            "5.9",
            """A read-only long-term pin of a PTE-mapped THP shared with a live child, then a
            write. From 5.9 to 5.18 the pin takes the shared subpage and the write copies away
            from it. 5.19 unshares the subpage into a private copy before pinning it.""",
            "unshare on R/O pin a7f226604170, c89357e27f20 (5.19)",
        ),
        ("cow-ro-pin-fast-shared", "pte-thp"): HugeStory("5.9", _FAST),
        ("cow-ro-pin-previously-shared", "pte-thp"): HugeStory(
            "6.2",
            """The child exits before the pin: the parent alone maps the PTE-mapped THP, read-only,
            its subpages no longer exclusive. 5.19's unshare fault asks for refcount 1 and finds
            512, one per PTE, so it copies the subpage although nobody else uses the folio:
            correct, but a needless copy. Later kernels reuse a large folio that one process maps
            exclusively, while 5.9 to 5.18 copy away from the pin.""",
            "unshare on R/O pin c89357e27f20 (5.19); large-folio reuse: Hildenbrand, "
            '"mm: COW reuse support for PTE-mapped THP with CONFIG_MM_ID"',
        ),
        ("cow-ro-pin-fast-previously-shared", "pte-thp"): HugeStory(
            "6.2",
            """The previous test with pin_user_pages_fast(). 5.19's GUP-fast bails out on the
            subpage that is not exclusive, and the slow path unshares it with the same needless
            copy.""",
        ),
        ("cow-ro-pin-exclusive", "pte-thp"): HugeStory(
            "5.9",
            """No fork: the PTE-mapped THP was only ever the parent's, but an mprotect() round trip
            with soft-dirty tracking leaves subpage 0 read-only. From 5.9 to 5.18 the write fault
            sees the folio's refcount and copies away from the pin. 5.19 knows the subpage is
            exclusive and reuses it.""",
        ),
        ("cow-ro-pin-fast-exclusive", "pte-thp"): HugeStory(
            "5.9",
            """The previous test with pin_user_pages_fast(). An exclusive subpage needs no
            unsharing, so GUP-fast may pin it straight from the read-only PTE from 5.19 on.""",
        ),
        # ── hugetlb ─────────────────────────────────────────────────────────────────────────
        ("cow-basic", "hugetlb"): HugeStory(
            "6.2",
            """The basic test on a private 2 MiB hugetlb page. fork() shares it read-only, and the
            parent's write fault in hugetlb_wp() copies because two processes map it. Every era
            gets this right.""",
        ),
        ("cow-basic-mprotect", "hugetlb"): HugeStory(
            "6.2",
            """The mprotect() round trip on a hugetlb page shared with a child.
            hugetlb_change_protection() never maps a page writable on mprotect(), so the write
            faults and copies in every era.""",
        ),
        ("cow-vmsplice-unmap-child", "hugetlb"): HugeStory(
            "6.2",
            """CVE-2020-29374 on hugetlb, still open today. hugetlb_wp() reuses a page as soon as
            one process maps it, because a hugetlb pool cannot afford needless copies, so after
            the child unmaps, the parent reuses the page the pipe holds. Only 5.8, which broke COW
            when vmsplice() took its reference, gets it right.""",
            f"CVE-2020-29374; {_XFAIL}",
        ),
        ("cow-vmsplice-unmap-child-mprotect", "hugetlb"): HugeStory(
            "6.2",
            """The previous test with an mprotect() round trip in the parent before it writes. The
            hugetlb page stays read-only and the write fault reuses it by its mapcount, so the
            child's pipe reads the parent's write.""",
            _XFAIL,
        ),
        ("cow-vmsplice-before-fork", "hugetlb"): HugeStory(
            "6.2",
            """The parent vmsplice()s its hugetlb page, forks, unmaps it, and the child writes.
            fork() copies only pinned hugetlb pages for the child and a pipe's reference is no
            pin, so in every era the child reuses the page the parent's pipe holds. cow.c expects
            the failure until vmsplice() pins with FOLL_PIN.""",
            _XFAIL,
        ),
        ("cow-vmsplice-unmap-parent", "hugetlb"): HugeStory(
            "6.2",
            """The parent forks, vmsplice()s the shared hugetlb page and unmaps it; then the child
            writes. The child's write fault counts one mapping and reuses the page under the
            parent's pipe. Only 5.8's COW break at vmsplice() time prevents it.""",
            _XFAIL,
        ),
        ("cow-iouring-ro-mapping", "hugetlb"): HugeStory(
            "6.2",
            """A hugetlb page registered as an io_uring fixed buffer is mapped read-only and
            read-write again, then written. hugetlb_wp() decides by mapcount, never by refcount,
            so the process reuses its pinned page in every era. The refcount rule that made 5.9 to
            5.18 copy small pages away from the pin never reached hugetlb.""",
        ),
        ("cow-iouring-fork", "hugetlb"): HugeStory(
            "5.8",
            """A hugetlb page registered as an io_uring fixed buffer, then fork() with the child
            kept alive. Up to 5.8 fork() shares it and the parent's write copies away from the pin.
            Since 5.12, inside the 5.9 era, fork() copies a pinned hugetlb page for the child.""",
            'fix 4eae4efa2c29 "hugetlb: do early cow when page pinned on src mm" (5.12), '
            "page_needs_cow_for_dma 97a7e4733b9b",
        ),
        ("cow-ro-pin-shared", "hugetlb"): HugeStory(
            "5.9",
            """A read-only long-term pin of a hugetlb page shared with a live child, then a write
            by the parent. From 5.9 to 5.18 the pin takes the shared page and the write copies
            away from it. 5.19 unshares hugetlb pages too (hugetlb_wp() with FAULT_FLAG_UNSHARE),
            as 5.8 did by breaking COW at pin time.""",
            "unshare on R/O pin a7f226604170, c89357e27f20 (5.19)",
        ),
        ("cow-ro-pin-fast-shared", "hugetlb"): HugeStory("5.9", _FAST),
        ("cow-ro-pin-previously-shared", "hugetlb"): HugeStory(
            "6.2",
            """The child exits before the pin, so the parent alone maps the hugetlb page,
            read-only. hugetlb_wp() reuses a page that one process maps, pinned or not, so in
            every era the pin sees the write. 5.19's unshare fault just marks the page
            exclusive.""",
        ),
        ("cow-ro-pin-fast-previously-shared", "hugetlb"): HugeStory("6.2", _FAST),
        ("cow-ro-pin-exclusive", "hugetlb"): HugeStory(
            "6.2",
            """No fork: the hugetlb page was only ever the parent's, mapped read-only by
            mprotect(). Every era pins it and then reuses it on the write, since hugetlb_wp()
            counts only mappings. The wrong COW that the refcount rule made from 5.9 to 5.18 does
            not exist on hugetlb.""",
        ),
        ("cow-ro-pin-fast-exclusive", "hugetlb"): HugeStory(
            "6.2",
            """The previous test with pin_user_pages_fast(). The page is exclusive, so from 5.19
            GUP-fast may pin it straight from the read-only entry.""",
        ),
    }
)


def preset_name(case: HugeCase, backing: PresetBacking) -> str:
    return f"{case.base}-{backing}"


def title(case: HugeCase, backing: PresetBacking) -> str:
    """The selftest's own "[RUN]" line for this case on this backing."""
    return f"{case.description} ... with {BACKINGS[backing]}"


def source(case: HugeCase, backing: PresetBacking, extra: str) -> str:
    where = f"tools/testing/selftests/mm/cow.c, test {case.number} ({_SOURCE_BACKING[backing]})"
    return f"{where}; {extra}" if extra else where


def text(case: HugeCase, backing: PresetBacking) -> str:
    """The scenario (without its `#title`/`#policy` head): the backing's populate, then the
    case's steps, with the comments in one column as in the hand-written presets."""
    block = _SETUP[backing] + case.steps
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    pairs = [(code.rstrip(), note) for code, _, note in (line.partition("#") for line in lines)]
    width = max(len(code) for code, _ in pairs) + 2
    return "".join(f"{code:<{width}}#{note}\n" if note else f"{code}\n" for code, note in pairs)


NOT_EXPRESSIBLE: Mapping[str, str] = MappingProxyType(
    {
        "single PTE of THP": (
            "cow.c MADV_DONTNEEDs every subpage but the first, leaving one PTE on a folio whose "
            "other 511 subpages are unmapped; `P dontneed a` zaps all of `a`, and no command "
            "zaps a part of a page"
        ),
        "partially mremap()'ed THP": (
            "cow.c mremap()s the upper half of the folio to another address and tests the lower "
            "half; the language has no mremap and a page name cannot be cut in two"
        ),
        "partially shared THP": (
            "cow.c MADV_DONTFORKs all but the first subpage, forks and reaps a child, then "
            "MADV_DOFORKs, so only subpage 0 was ever shared; `P dontfork a` covers all of `a`"
        ),
    }
)
"""The selftest's THP runs that are not presets, and the piece of the language each one lacks."""
