"""The words on the picture: flags, counters and headings of page tables, frames and references.

The diagram and the text tables (`app.views.tables`, the screen-reader twin of the picture)
print the same facts with these same helpers, so the two cannot disagree.
"""

from __future__ import annotations

from itertools import groupby
from typing import NamedTuple

from engine.state import Frame, Pte, Ref, Vma

VALUE_CHARS = 16  # longer values are cut with "…"; the full value is in the tooltip and table


def short(value: str, limit: int = VALUE_CHARS) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def vma_flags(vma: Vma) -> list[str]:
    """The VMA's flags in words, as both the picture and the table print them."""
    flags: list[str] = []
    if not vma.write:
        flags.append("read-only VMA")
    if vma.dontcopy:
        flags.append("dontfork")
    if vma.uffd_wp:
        flags.append("uffd-wp armed")
    if vma.softdirty_tracking:
        flags.append("sd tracking")
    return flags


def vma_note(vma: Vma | None) -> str:
    if vma is None:
        return "no VMA"
    notes: list[str] = []
    if vma.huge:
        notes.append(backing_words(vma))
    if vma.file is not None:
        notes.append(f"file {vma.file}" + (" shared" if vma.shared else ""))
    return " · ".join(notes + vma_flags(vma))


def pte_flags(pte: Pte | None, vma: Vma | None, has_exclusive_bit: bool) -> list[str]:
    """The PTE's flags in words, as both the picture and the table print them."""
    if pte is None:
        return ["not present"]
    flags: list[str] = []
    if pte.present:
        flags.append("RW" if pte.writable else "RO")
        if pte.dirty:
            flags.append("dirty")
    else:
        flags.append(f"swap #{pte.swap_slot}")
        if has_exclusive_bit and pte.swap_exclusive:
            flags.append("exclusive")
    # Soft-dirty is set on every new PTE; it only means something once clear_refs armed it.
    if vma is not None and vma.softdirty_tracking:
        flags.append("soft-dirty" if pte.softdirty else "sd clean")
    if pte.uffd_wp:
        flags.append("uffd-wp")
    return flags


def backing_words(vma: Vma) -> str:
    """``THP 2 MiB`` / ``hugetlb 2 MiB``: what backs a huge-page VMA (DESIGN.md §10)."""
    return f"{'THP' if vma.backing == 'thp' else 'hugetlb'} 2 MiB"


def folio_kind(frame: Frame) -> str:
    return "hugetlb" if frame.folio is not None and frame.folio.kind == "hugetlb" else "THP"


def folio_size(frame: Frame) -> str:
    kib = 4 << frame.order
    return f"{kib // 1024} MiB" if kib >= 1024 else f"{kib} KiB"


class SubpageRun(NamedTuple):
    """Subpages ``first``…``last`` of a folio, which all have this mapcount and exclusive bit."""

    first: int
    last: int
    mapcount: int  # page_mapcount(): its PTE mappings plus the folio's PMD mappings
    exclusive: bool

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    @property
    def name(self) -> str:
        if self.first == self.last:
            return f"subpage #{self.first}"
        return f"subpages #{self.first}–{self.last}"


def subpage_runs(frame: Frame) -> tuple[SubpageRun, ...]:
    """Subpage 0 (the 4 KiB that reads and writes touch, DESIGN.md §10), then the others in runs
    of equal counters: 512 boxes are not readable, and the subpages nobody touched are alike."""
    n = frame.nr_pages
    if frame.folio is None:
        return (SubpageRun(0, 0, frame.mapcount, frame.anon_exclusive),)
    entire = frame.folio.entire_mapcount
    runs = [SubpageRun(0, 0, frame.subpage_mapcount(0), frame.subpage_anon_exclusive(0))]
    folio = frame.folio
    maps, bits = folio.subpage_mapcounts[1:n], folio.subpage_exclusive[1:n]
    if maps and maps.count(maps[0]) == n - 1 and bits.count(bits[0]) == n - 1:
        # The usual folio: subpages 1… all alike (`count` is one C loop).
        return (*runs, SubpageRun(1, n - 1, maps[0] + entire, bits[0]))
    # groupby over the (mapcount, bit) pairs themselves, without a key function: the 511
    # comparisons stay in C, where a Python key per subpage cost a millisecond a folio on
    # every step of a huge-page scenario (issue 23's profile).
    rest = zip(maps, bits, strict=True)
    first = 1
    for (mapcount, exclusive), group in groupby(rest):
        size = len(list(group))
        runs.append(SubpageRun(first, first + size - 1, mapcount + entire, exclusive))
        first += size
    return tuple(runs)


def subpage_counter_parts(run: SubpageRun, has_exclusive_bit: bool) -> list[str]:
    """``["mapcount 1", "exclusive ✓"]``: one run's counters (the exclusive bit from 5.19)."""
    parts = [f"mapcount {run.mapcount}"]
    if has_exclusive_bit:
        parts.append("exclusive " + ("✓" if run.exclusive else "✗"))
    return parts


def subpage_counters(run: SubpageRun, has_exclusive_bit: bool) -> str:
    """``mapcount 1 · exclusive ✓``: one run's counters, as the table says them."""
    return " · ".join(subpage_counter_parts(run, has_exclusive_bit))


def huge_target(pte: Pte) -> str:
    """Where a huge-page VMA's mapping points, short enough for its row: ``PMD → pfn 3``, or at
    PTE level subpage 0's page and the folio the other subpages map (``rest_pfn``)."""
    if pte.pmd:
        return f"PMD → pfn {pte.pfn}"
    if pte.pfn is not None and pte.pfn == pte.rest_pfn:
        return f"PTEs → pfn {pte.pfn}"
    parts = []
    if pte.pfn is not None:
        parts.append(f"#0 → pfn {pte.pfn}")
    elif pte.swap_slot is not None:
        parts.append(f"#0 → slot {pte.swap_slot}")
    if pte.rest_pfn is not None:
        parts.append(f"rest → {pte.rest_pfn}")
    return " · ".join(parts)


def huge_mapping_words(pte: Pte) -> str:
    """The same in a sentence, for the tooltip and the text table."""
    if pte.pmd:
        return f"pfn {pte.pfn}, the whole 2 MiB folio, by one PMD"
    parts = []
    if pte.pfn is not None:
        parts.append(f"subpage #0 by a PTE to pfn {pte.pfn}")
    elif pte.swap_slot is not None:
        parts.append(f"subpage #0 swapped out to slot {pte.swap_slot}")
    if pte.rest_pfn is not None:
        parts.append(f"subpages #1–511 by 511 PTEs to the folio pfn {pte.rest_pfn}")
    else:
        parts.append("subpages #1–511 no longer in a large folio")
    return "; ".join(parts)


def frame_heading(frame: Frame) -> str:
    if frame.folio is not None:
        return f"{folio_kind(frame)} · pfn {frame.pfn} · {folio_size(frame)}"
    if frame.kind == "zero":
        return "ZERO PAGE · pfn 0"
    if frame.kind == "pagecache":
        return f"page cache {frame.file or ''} · pfn {frame.pfn}".replace("  ", " ")
    return f"anon · pfn {frame.pfn}"


def folio_counter_parts(frame: Frame) -> list[str]:
    """A folio's refcount and its exact pincount, always shown: a large folio counts pins in
    _pincount (+1 refcount each), where a small page's FOLL_PIN adds GUP_PIN_COUNTING_BIAS."""
    return [f"refcount {frame.refcount}", f"pincount {frame.pins}"]


def frame_counters(frame: Frame) -> str:
    if frame.folio is not None:
        return " · ".join(folio_counter_parts(frame))
    if frame.kind == "zero":
        return "shared by all, never freed"
    return f"refcount {frame.refcount} · mapcount {frame.mapcount}"


def folio_extras(frame: Frame) -> list[str]:
    """A folio's counters beside refcount and pincount: its PMD mappings, GETs, swap cache."""
    extras = [f"entire mapcount {frame.entire_mapcount}"]
    if frame.gets:
        extras.append(f"gets {frame.gets}")
    if frame.swapcache:
        extras.append("swapcache")
    return extras


def frame_extras(frame: Frame, has_exclusive_bit: bool) -> list[str]:
    if frame.folio is not None:
        return folio_extras(frame) + [
            f"{run.name}: {subpage_counters(run, has_exclusive_bit)}" for run in subpage_runs(frame)
        ]
    extras: list[str] = []
    if frame.pins:
        extras.append(f"pins {frame.pins}")
    if frame.gets:
        extras.append(f"gets {frame.gets}")
    if frame.swapcache:
        extras.append("swapcache")
    if has_exclusive_bit and frame.kind == "anon":
        extras.append("exclusive ✓" if frame.anon_exclusive else "exclusive ✗")
    return extras


def ref_heading(ref: Ref) -> str:
    return f"{ref.holder} {ref.name}"


def ref_detail(ref: Ref) -> str:
    return f"{'|'.join(ref.foll)} · {ref.owner}:{ref.page}"


def ref_flags_short(ref: Ref) -> str:
    """``FOLL_PIN|WRITE|LONGTERM``: the flags as a kernel reader writes them, fitting a box."""
    return "FOLL_" + "|".join(flag.removeprefix("FOLL_") for flag in ref.foll)
