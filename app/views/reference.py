"""`/reference`: a card of the scenario verbs and a glossary of the kernel words the page uses.

A student projecting the page meets `FOLL_PIN` or `mapcount` in the narration: the glossary
says what each means in a sentence or two, in the kernel's own words where it has them
(kernel-cow-semantics.md §1). The verb card is the language of DESIGN.md §2; a test checks that
it lists every verb the parser knows (`engine.syntax.PROC_VERBS`, `REF_VERBS`), so the card
cannot fall behind the language.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verb:
    verb: str
    usage: str
    meaning: str


@dataclass(frozen=True, slots=True)
class Term:
    term: str
    anchor: str
    meaning: str


PROCESS_VERBS: tuple[Verb, ...] = (
    Verb(
        "mmap", "P mmap a [b …]", "private anonymous read-write pages (MAP_PRIVATE|MAP_ANONYMOUS)"
    ),
    Verb(
        "mmap",
        "P mmap a file=F [shared] [ro]",
        "a page of file F: private unless shared, read-write unless ro",
    ),
    Verb(
        "mmap",
        "P mmap a [b …] backing=thp|hugetlb",
        "each page a 2 MiB huge page: a PMD-mapped transparent huge page, or a private hugetlb "
        "page; reads and writes touch its first 4 KiB subpage",
    ),
    Verb("read", "P read a", "load; a never-written anonymous page maps the shared zero page"),
    Verb("write", "P write a [VALUE]", "store (a write fault when the PTE is read-only)"),
    Verb("fork", "P fork C", "fork(): C is the child, sharing every private page copy-on-write"),
    Verb("exit", "P exit", "exit() and reap"),
    Verb("munmap", "P munmap a", "munmap"),
    Verb("dontneed", "P dontneed a", "madvise(MADV_DONTNEED): drop the page, keep the mapping"),
    Verb("dontfork", "P dontfork a", "madvise(MADV_DONTFORK): the child does not get this range"),
    Verb("dofork", "P dofork a", "madvise(MADV_DOFORK): undo dontfork"),
    Verb("mprotect", "P mprotect a ro|rw", "mprotect(PROT_READ) or back to read-write"),
    Verb(
        "pte-map",
        "P pte-map a",
        "remap a PMD-mapped THP with 512 PTEs, keeping the folio whole (a PTE-mapped THP)",
    ),
    Verb("clear-softdirty", "P clear-softdirty", "write 4 to /proc/PID/clear_refs"),
    Verb("swapout", "P swapout a", "madvise(MADV_PAGEOUT): push the page to swap"),
    Verb("uffd-wp", "P uffd-wp a on|off", "userfaultfd write-protect of the range"),
    Verb(
        "vmsplice",
        "P vmsplice a [as R]",
        "vmsplice into a pipe: a read-only FOLL_GET reference the pipe R holds",
    ),
    Verb(
        "get",
        "P get a ro|rw [as R] [wrong-side-ok]",
        "get_user_pages (FOLL_GET), e.g. O_DIRECT in older kernels",
    ),
    Verb(
        "pin",
        "P pin a ro|rw [longterm] [fast] [as R] [wrong-side-ok]",
        "pin_user_pages(_fast) (FOLL_PIN), e.g. RDMA, VFIO, O_DIRECT today",
    ),
    Verb(
        "iouring", "P iouring a [as R]", "io_uring fixed buffer: FOLL_PIN|FOLL_WRITE|FOLL_LONGTERM"
    ),
    Verb(
        "forcewrite",
        "P forcewrite a VALUE [race]",
        "write through /proc/PID/mem (FOLL_FORCE|FOLL_WRITE); race adds the MADV_DONTNEED "
        "thread of Dirty COW",
    ),
)

REFERENCE_VERBS: tuple[Verb, ...] = (
    Verb("read", "R read", "read through the reference: a pipe read, a device's DMA read"),
    Verb("write", "R write VALUE", "the device writes into memory through a read-write reference"),
    Verb("release", "R release", "unpin, put_page, or the pipe drained"),
)

OTHER_LINES: tuple[Verb, ...] = (
    Verb("file", "file F VALUE", "declare file F with VALUE on disk"),
    Verb("#", "# …", "a comment; #title, #policy, #: notes and #? questions annotate"),
)

GLOSSARY: tuple[Term, ...] = (
    Term(
        "PTE",
        "pte",
        "Page-table entry: how one process maps one virtual page to a physical frame, with its "
        "permission bits. RW means writable; a private page shared after fork() is mapped RO so "
        "the first write faults.",
    ),
    Term(
        "refcount",
        "refcount",
        "page_count(): every reference to the frame of any kind — each PTE that maps it, the "
        "swap cache, each FOLL_GET, each pipe buffer, and the pin bias of each FOLL_PIN.",
    ),
    Term(
        "mapcount",
        "mapcount",
        "page_mapcount(): how many page-table entries map the frame. Up to 5.8 a write fault "
        "reused a page whose mapcount was 1, whoever else held a reference: the root of "
        "CVE-2020-29374.",
    ),
    Term(
        "FOLL_GET",
        "foll-get",
        "get_user_pages(): a plain reference (+1 refcount) to a user page, e.g. a pipe buffer "
        "after vmsplice. It does not say whether the holder will read or write, or for how long.",
    ),
    Term(
        "FOLL_PIN",
        "foll-pin",
        "pin_user_pages() (5.6, eddb1c228f79): a reference for DMA or data access, released with "
        "unpin_user_page() and counted apart, so the kernel can tell a page “may be pinned”.",
    ),
    Term(
        "FOLL_LONGTERM",
        "foll-longterm",
        "A pin held indefinitely (RDMA, VFIO, io_uring fixed buffers). Since 6.2 a read-only "
        "long-term pin also unshares the zero page and page-cache pages of a private mapping.",
    ),
    Term(
        "pin bias",
        "pin-bias",
        "GUP_PIN_COUNTING_BIAS (3faa52c03f44, 5.7): a FOLL_PIN adds 1024 to a small page's "
        "refcount, so page_maybe_dma_pinned() reads refcount ≥ 1024 as “maybe pinned”.",
    ),
    Term(
        "PageAnonExclusive",
        "page-anon-exclusive",
        "A bit on a mapped anonymous page (5.19, 6c287605fd56): only this process maps it. A "
        "write may reuse an exclusive page at once; a pin may only be taken on an exclusive page.",
    ),
    Term(
        "unshare",
        "unshare",
        "FAULT_FLAG_UNSHARE (5.19, c89357e27f20): a fault that makes a possibly shared "
        "anonymous page exclusive — by copying it if needed — and keeps it read-only. A "
        "read-only pin takes it first, so the pin and the process see the same page.",
    ),
    Term(
        "COW",
        "cow",
        "Copy-on-write: after fork() parent and child map each private page read-only; the "
        "first write faults and either reuses the page or copies it (do_wp_page()).",
    ),
)
