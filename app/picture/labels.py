"""The words on the picture: flags, counters and headings of page tables, frames and references.

The diagram and the text tables (`app.views.tables`, the screen-reader twin of the picture)
print the same facts with these same helpers, so the two cannot disagree.
"""

from __future__ import annotations

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


def frame_heading(frame: Frame) -> str:
    if frame.kind == "zero":
        return "ZERO PAGE · pfn 0"
    if frame.kind == "pagecache":
        return f"page cache {frame.file or ''} · pfn {frame.pfn}".replace("  ", " ")
    return f"anon · pfn {frame.pfn}"


def frame_counters(frame: Frame) -> str:
    if frame.kind == "zero":
        return "shared by all, never freed"
    return f"refcount {frame.refcount} · mapcount {frame.mapcount}"


def frame_extras(frame: Frame, has_exclusive_bit: bool) -> list[str]:
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
