"""The machine's state after a step: frames, page tables, VMAs, references, swap and files.

Everything is immutable; a step builds a new `State` that shares every unchanged object with
the previous one, so a trace can keep one state per step cheaply. The records are NamedTuples
rather than frozen dataclasses because a replay builds thousands of them and a NamedTuple is
built and `_replace`d about three times faster (DESIGN.md §7's 1 ms replay budget). The
counters on `Frame` are the kernel's (``mapcount``, FOLL_GET and FOLL_PIN references, swap
cache, page cache); ``refcount`` is derived from them exactly as `page_count()` would report
it, including the GUP_PIN_COUNTING_BIAS of 1024 per FOLL_PIN on a small page (3faa52c03f44, 5.7).

Huge pages (DESIGN.md §10). A `backing=thp` or `backing=hugetlb` page is one VMA of 2 MiB whose
memory is a large folio (`Frame.folio`, order 9, 512 subpages). Reads and writes touch subpage 0
only, so a process's mapping of such a VMA is one `Pte` that says how subpage 0 is mapped and
how the other 511 are:

- ``pmd=True``: one PMD maps the whole folio ``pfn`` (entire mapcount +1, one reference);
  hugetlb pages are always mapped this way (a huge PTE at PMD level);
- ``pmd=False``: PTEs. ``pfn`` is subpage 0's page — subpage 0 of the folio, or a small page
  once subpage 0 was copied out of it — and ``rest_pfn`` the large folio whose subpages 1…511
  this process still maps with 511 PTEs (None once they left it).

Subpages 1…511 are kept only while they map a large folio: they are always treated alike (no
command touches one of them alone), so per subpage the folio is subpage 0 and "the rest".
Once they leave the folio (copied into small pages by fork, swapped out) no command can reach
them again, and the model drops them rather than keep 511 frames nobody can observe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

from engine.commands import Backing, RefKind

GUP_PIN_COUNTING_BIAS = 1024
ZERO_PFN = 0

FrameKind = Literal["anon", "zero", "pagecache"]
FolioKind = Literal["thp", "hugetlb"]
# The order of a PMD-sized folio on x86-64 (HPAGE_PMD_ORDER): 512 subpages of 4 KiB.
HPAGE_PMD_ORDER = 9
ValueVia = Literal["cpu", "device", "file", "zero", "force", "copy"]


class Value(NamedTuple):
    """A page's contents, with where it came from, so verdicts can say where a value came from.

    ``writer`` is the process (for ``cpu`` and ``force``), the reference (``device``), the file
    (``file``) or ``"zero"`` (the zero page / a never-written page); ``step`` is the step that
    wrote it (0 for file contents and zero). Two values are the same value only if text, writer,
    via and step all agree: equal text written twice is still two writes.
    """

    text: str
    writer: str
    via: ValueVia
    step: int

    def describe(self) -> str:
        if self.via == "zero":
            return f"{self.text} (zero page)"
        if self.via == "file":
            return f"{self.text} (file {self.writer})"
        if self.via == "device":
            return f"{self.text} (device write through {self.writer} at step {self.step})"
        if self.via == "force":
            return f"{self.text} (/proc/{self.writer}/mem at step {self.step})"
        return f"{self.text} (written by {self.writer} at step {self.step})"


ZERO_VALUE = Value("0", "zero", "zero", 0)


class Folio(NamedTuple):
    """What a large folio keeps beyond a small page's counters (kernel-cow-semantics.md §1.2–1.3).

    ``subpage_mapcounts`` are the PTE mappings of each subpage (they add up to the frame's
    ``mapcount``), ``subpage_exclusive`` each subpage's PageAnonExclusive bit, and
    ``entire_mapcount`` the PMD mappings of the whole folio (folio->_entire_mapcount).
    ``kind`` tells a transparent huge page from a hugetlb page: the kernel decides their COW
    on different paths (do_huge_pmd_wp_page / do_wp_page vs hugetlb_wp). The exact pincount
    (folio->_pincount) is the frame's ``pins``. While PMD-mapped, PG_anon_exclusive lives in
    the head page (``subpage_exclusive[0]``) for the whole folio.
    """

    order: int  # 1 << order subpages
    subpage_mapcounts: tuple[int, ...]
    subpage_exclusive: tuple[bool, ...]
    entire_mapcount: int = 0
    kind: FolioKind = "thp"


class Frame(NamedTuple):
    """A physical folio: a small page (``folio`` None, what every scenario uses today) or a large
    folio of ``1 << folio.order`` subpages.

    A small page's one subpage is described by ``mapcount`` and ``anon_exclusive``; a large
    folio adds per-subpage mapcounts and exclusive bits and its PMD mappings in `Folio`, kept in
    one optional field so that the small pages every replay builds stay as cheap as before. Pins
    differ by size: a FOLL_PIN adds GUP_PIN_COUNTING_BIAS (1024) to a small page's refcount, so
    "maybe pinned" is a guess from the refcount; a large folio counts pins exactly in
    ``_pincount`` and adds 1 to the refcount per pin (3faa52c03f44, 5.7). The swap cache and the
    page cache hold one reference per subpage.
    """

    pfn: int
    kind: FrameKind
    value: Value
    mapcount: int = 0  # PTE mappings (of all subpages of a large folio)
    gets: int = 0  # FOLL_GET references, pipe buffers from vmsplice included
    pins: int = 0  # FOLL_PIN references
    swapcache: bool = False
    file: str | None = None  # page-cache page of this file (the page cache holds one reference)
    anon_exclusive: bool = False  # PG_anon_exclusive (5.19+, 6c287605fd56); always False before
    folio: Folio | None = None  # None for a small page

    @property
    def order(self) -> int:
        return 0 if self.folio is None else self.folio.order

    @property
    def nr_pages(self) -> int:
        return 1 << self.order

    @property
    def entire_mapcount(self) -> int:
        return 0 if self.folio is None else self.folio.entire_mapcount

    @property
    def refcount(self) -> int:
        if self.kind == "zero":
            return 0
        if self.folio is None:
            return (
                self.mapcount
                + self.gets
                + self.pins * GUP_PIN_COUNTING_BIAS
                + int(self.swapcache)
                + int(self.file is not None)
            )
        return (
            self.mapcount
            + self.folio.entire_mapcount
            + self.gets
            + self.pins
            + (1 << self.folio.order) * (int(self.swapcache) + int(self.file is not None))
        )

    @property
    def maybe_dma_pinned(self) -> bool:
        """folio_maybe_dma_pinned(): the exact pincount of a large folio, or refcount ≥
        GUP_PIN_COUNTING_BIAS on a small page (false positives allowed)."""
        if self.folio is not None:
            return self.pins > 0
        return self.refcount >= GUP_PIN_COUNTING_BIAS

    @property
    def folio_mapcount(self) -> int:
        """folio_mapcount(): every PTE mapping of any subpage plus every PMD mapping."""
        return self.mapcount + self.entire_mapcount

    def subpage_mapcount(self, index: int) -> int:
        """page_mapcount() of one subpage: its PTE mappings plus the folio's PMD mappings."""
        if self.folio is None:
            assert index == 0, f"a small page has one subpage, not {index + 1}"
            return self.mapcount
        return self.folio.subpage_mapcounts[index] + self.folio.entire_mapcount

    def subpage_anon_exclusive(self, index: int) -> bool:
        if self.folio is None:
            assert index == 0, f"a small page has one subpage, not {index + 1}"
            return self.anon_exclusive
        return self.folio.subpage_exclusive[index]


class Pte(NamedTuple):
    """A page-table entry: present (``pfn``) or a swap entry (``swap_slot``).

    For a huge-page VMA it also says the level (``pmd``) and, at PTE level, which large folio
    the other subpages map (``rest_pfn``); see the module docstring."""

    pfn: int | None = None
    swap_slot: int | None = None
    writable: bool = False
    dirty: bool = False
    softdirty: bool = True
    uffd_wp: bool = False
    swap_exclusive: bool = False  # exclusive marker in a swap PTE (5.19+, 1493a1913e34)
    pmd: bool = False  # a PMD (or hugetlb huge PTE) maps the whole folio ``pfn``
    rest_pfn: int | None = None  # PTE level: the large folio subpages 1… still map

    @property
    def present(self) -> bool:
        return self.pfn is not None

    @property
    def level(self) -> Literal["pmd", "pte"]:
        return "pmd" if self.pmd else "pte"


class Vma(NamedTuple):
    """One mapped page of a process (cowlab maps every page name as its own VMA)."""

    page: str
    file: str | None = None
    shared: bool = False
    write: bool = True  # VM_WRITE
    maywrite: bool = True  # VM_MAYWRITE
    dontcopy: bool = False  # VM_DONTCOPY (MADV_DONTFORK)
    uffd_wp: bool = False  # VM_UFFD_WP registered
    softdirty_tracking: bool = False  # clear_refs 4 cleared VM_SOFTDIRTY: tracking is on
    # vma->anon_vma: set once an anonymous page was allocated here. fork copies no PTEs of a
    # VMA without one, since a fault fills them correctly (vma_needs_copy).
    anon_vma: bool = False
    # A uffd-wp PTE marker in the empty PTE slot (5.19+, file-backed memory): the page is
    # write-protected before it is even faulted in.
    uffd_wp_marker: bool = False
    backing: Backing = "base"  # `backing=thp|hugetlb`: a 2 MiB huge page (DESIGN.md §10)

    @property
    def huge(self) -> bool:
        return self.backing != "base"

    @property
    def is_cow_mapping(self) -> bool:
        """is_cow_mapping(): private and may-write (a PROT_READ MAP_PRIVATE file mapping is one)."""
        return not self.shared and self.maywrite

    @property
    def anonymous(self) -> bool:
        return self.file is None

    @property
    def takes_uffd_wp_markers(self) -> bool:
        """Whether uffd-wp protects an empty PTE slot here with a PTE marker (5.19+): file
        memory, and hugetlb, which userfaultfd handles like a file — hugetlb_change_protection
        installs the marker in a none huge PTE (60dfaad65aa9). Anonymous memory gets none
        (without UFFD_FEATURE_WP_UNPOPULATED, which cowlab does not model)."""
        return self.file is not None or self.backing == "hugetlb"


class Proc(NamedTuple):
    name: str
    parent: str | None
    vmas: Mapping[str, Vma]
    ptes: Mapping[str, Pte]
    has_pinned: bool = False  # mm->has_pinned / MMF_HAS_PINNED (5.9+, 008cfe4418b3); sticky


class Ref(NamedTuple):
    """A reference taken by GUP on a page: a pipe buffer, a device's DMA mapping, a fixed buffer."""

    name: str
    kind: RefKind
    owner: str
    page: str
    pfn: int
    write: bool
    longterm: bool
    fast: bool
    wrong_side_ok: bool
    step: int  # the step that took it

    @property
    def foll(self) -> tuple[str, ...]:
        """The FOLL_* flags of the get_user_pages call that took this reference."""
        flags = ["FOLL_PIN" if self.kind in ("pin", "iouring") else "FOLL_GET"]
        if self.write:
            flags.append("FOLL_WRITE")
        if self.longterm:
            flags.append("FOLL_LONGTERM")
        return tuple(flags)

    @property
    def holder(self) -> str:
        return {"vmsplice": "pipe", "get": "device", "pin": "device", "iouring": "io_uring"}[
            self.kind
        ]


class SwapSlot(NamedTuple):
    slot: int
    value: Value
    swapcount: int  # swap PTEs that reference this slot
    cache_pfn: int | None = None  # the page still in the swap cache for this slot, if any


class File(NamedTuple):
    name: str
    value: Value  # contents on disk / in the page cache
    cache_pfn: int | None = None


class State(NamedTuple):
    procs: Mapping[str, Proc]
    frames: Mapping[int, Frame]
    refs: Mapping[str, Ref]
    swap: Mapping[int, SwapSlot]
    files: Mapping[str, File]
    next_pfn: int = 1
    next_slot: int = 1


def empty_state() -> State:
    """Step 0: nothing but the shared zero page."""
    zero = Frame(pfn=ZERO_PFN, kind="zero", value=ZERO_VALUE)
    return State(procs={}, frames={ZERO_PFN: zero}, refs={}, swap={}, files={})


# The helpers below build a record positionally instead of with ``_replace``, which is generic
# and about twice as slow; fork, exit and munmap call them once per page (DESIGN.md §7's worst
# request is 1,000 forks and exits of a 256-page process). A test holds each equal to the
# ``_replace`` it stands for, so a field added to a record cannot be dropped silently.


def pte_readonly(pte: Pte) -> Pte:
    """``pte._replace(writable=False)``; the same object when it is read-only already."""
    if not pte.writable:
        return pte
    return Pte(
        pte.pfn,
        pte.swap_slot,
        False,
        pte.dirty,
        pte.softdirty,
        pte.uffd_wp,
        pte.swap_exclusive,
        pte.pmd,
        pte.rest_pfn,
    )


def frame_mapped(frame: Frame, delta: int, anon_exclusive: bool) -> Frame:
    """``frame._replace(mapcount=frame.mapcount + delta, anon_exclusive=anon_exclusive)``."""
    return Frame(
        frame.pfn,
        frame.kind,
        frame.value,
        frame.mapcount + delta,
        frame.gets,
        frame.pins,
        frame.swapcache,
        frame.file,
        anon_exclusive,
        frame.folio,
    )


def frame_dropped(frame: Frame, mapcount: int, gets: int, pins: int) -> Frame:
    """``frame`` with ``mapcount`` mappings, ``gets`` FOLL_GET and ``pins`` FOLL_PIN references
    fewer; PG_anon_exclusive goes with the last mapping (a page nobody maps is nobody's). A
    large folio's mappings move through `folio_mapped`, so here (references only) its bits
    stay."""
    left = frame.mapcount - mapcount
    return Frame(
        frame.pfn,
        frame.kind,
        frame.value,
        left,
        frame.gets - gets,
        frame.pins - pins,
        frame.swapcache,
        frame.file,
        frame.anon_exclusive and (left > 0 or frame.folio is not None),
        frame.folio,
    )


def folio_frame(
    pfn: int, kind: FolioKind, value: Value, *, entire: int, sub0: int, rest: int, exclusive: bool
) -> Frame:
    """A new PMD-sized anonymous folio: ``entire`` PMD mappings, ``sub0`` PTE mappings of
    subpage 0 and ``rest`` of each other subpage; every subpage PageAnonExclusive or none (a
    new folio is mapped by one process, the head's bit standing for all while PMD-mapped)."""
    n = 1 << HPAGE_PMD_ORDER
    return Frame(
        pfn=pfn,
        kind="anon",
        value=value,
        mapcount=sub0 + rest * (n - 1),
        anon_exclusive=exclusive,
        folio=Folio(
            HPAGE_PMD_ORDER,
            (sub0,) + (rest,) * (n - 1),
            (exclusive,) * n,
            entire,
            kind,
        ),
    )


def folio_mapped(
    frame: Frame,
    *,
    entire: int = 0,
    sub0: int = 0,
    rest: int = 0,
    exclusive0: bool | None = None,
    exclusive_rest: bool | None = None,
) -> Frame:
    """A large folio with ``entire`` more PMD mappings, ``sub0`` more PTE mappings of subpage 0
    and ``rest`` more of each other subpage (negative: fewer), and the exclusive bits of
    subpage 0 and of the others set when given. Subpages 1… always move together (the module
    docstring says why), so the folio is subpage 0 and the rest."""
    folio = frame.folio
    assert folio is not None, f"frame #{frame.pfn} is a small page"
    n = 1 << folio.order
    maps = folio.subpage_mapcounts
    bits = folio.subpage_exclusive
    first = maps[0] + sub0
    others = maps[1] + rest
    bit0 = bits[0] if exclusive0 is None else exclusive0
    bit_rest = bits[1] if exclusive_rest is None else exclusive_rest
    new_maps = maps if (sub0, rest) == (0, 0) else (first,) + (others,) * (n - 1)
    new_bits = bits if (bit0, bit_rest) == (bits[0], bits[1]) else (bit0,) + (bit_rest,) * (n - 1)
    return frame._replace(
        mapcount=first + others * (n - 1),
        anon_exclusive=bit0,
        folio=Folio(folio.order, new_maps, new_bits, folio.entire_mapcount + entire, folio.kind),
    )
