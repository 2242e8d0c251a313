"""The kernel's accounting laws, checked on any state. Shared by the property tests."""

from __future__ import annotations

from collections import Counter

from engine.policies import Policy
from engine.state import GUP_PIN_COUNTING_BIAS, ZERO_PFN, State


def check_state(state: State, policy: Policy) -> None:
    """Raise AssertionError with a precise message if an accounting law is broken."""
    mapped: Counter[int] = Counter()
    swap_users: Counter[int] = Counter()
    for proc in state.procs.values():
        assert set(proc.ptes) <= set(proc.vmas), f"{proc.name} has a PTE outside its VMAs"
        for page, pte in proc.ptes.items():
            assert (pte.pfn is None) != (pte.swap_slot is None), f"{proc.name}/{page}: {pte}"
            if pte.pfn is not None:
                assert pte.pfn in state.frames, f"{proc.name}/{page} maps freed frame {pte.pfn}"
                mapped[pte.pfn] += 1
            else:
                assert pte.swap_slot is not None and pte.swap_slot in state.swap, (
                    f"{proc.name}/{page}: dangling swap entry"
                )
                swap_users[pte.swap_slot] += 1
    pins: Counter[int] = Counter()
    gets: Counter[int] = Counter()
    for ref in state.refs.values():
        assert ref.pfn in state.frames, f"reference {ref.name} holds freed frame {ref.pfn}"
        (pins if ref.kind in ("pin", "iouring") else gets)[ref.pfn] += 1
    cached = {slot.cache_pfn: slot for slot in state.swap.values() if slot.cache_pfn is not None}
    files = {f.cache_pfn: f for f in state.files.values() if f.cache_pfn is not None}

    for pfn, frame in state.frames.items():
        assert frame.pfn == pfn
        if pfn == ZERO_PFN:
            assert frame.kind == "zero"
            continue
        # refcount equals the references that exist
        assert frame.mapcount == mapped[pfn], f"#{pfn} mapcount {frame.mapcount} != {mapped[pfn]}"
        assert frame.pins == pins[pfn], f"#{pfn} pins {frame.pins} != {pins[pfn]}"
        assert frame.gets == gets[pfn], f"#{pfn} gets {frame.gets} != {gets[pfn]}"
        assert frame.swapcache == (pfn in cached), f"#{pfn} swap cache flag is wrong"
        assert (frame.file is not None) == (pfn in files), f"#{pfn} page-cache flag is wrong"
        # per subpage: a small page is its one subpage; a large folio's subpages add up
        if frame.folio is not None:
            folio = frame.folio
            assert folio.order > 0, f"#{pfn} a folio of one page is a small page"
            assert len(folio.subpage_mapcounts) == frame.nr_pages, f"#{pfn} subpage mapcounts"
            assert len(folio.subpage_exclusive) == frame.nr_pages, f"#{pfn} subpage bits"
            assert sum(folio.subpage_mapcounts) == frame.mapcount, f"#{pfn} subpages != mapcount"
        # per folio: the refcount is the references that exist, counted from the outside —
        # page tables, GUP references, swap cache, page cache — with the pin bias of a small
        # page and the exact pincount of a large folio
        pin_weight = GUP_PIN_COUNTING_BIAS if frame.folio is None else 1
        held_by_caches = frame.nr_pages * (int(pfn in cached) + int(pfn in files))
        references = (
            mapped[pfn]
            + frame.entire_mapcount
            + gets[pfn]
            + pins[pfn] * pin_weight
            + held_by_caches
        )
        assert frame.refcount == references, f"#{pfn} refcount {frame.refcount} != {references}"
        assert frame.maybe_dma_pinned == (
            references >= GUP_PIN_COUNTING_BIAS if frame.folio is None else pins[pfn] > 0
        ), f"#{pfn} maybe_dma_pinned is wrong"
        # a frame is freed exactly when nothing holds it
        assert frame.refcount > 0, f"#{pfn} has no references but was not freed"
        if not policy.has_exclusive_bit:
            assert not frame.anon_exclusive, f"#{pfn} exclusive bit in an era without it"

    for slot_id, slot in state.swap.items():
        assert slot.swapcount == swap_users[slot_id], f"slot {slot_id} swapcount is wrong"
        assert slot.swapcount > 0 or slot.cache_pfn is not None, f"slot {slot_id} leaked"
        if slot.cache_pfn is not None:
            assert slot.cache_pfn in state.frames, f"slot {slot_id} caches freed #{slot.cache_pfn}"
            assert state.frames[slot.cache_pfn].swapcache
    # one swap slot per swap-cache page: a page paged out again keeps its entry
    assert len(cached) == sum(s.cache_pfn is not None for s in state.swap.values()), "two slots"
    for file in state.files.values():
        assert file.cache_pfn is None or file.cache_pfn in state.frames, f"{file.name} cache"

    # a writable PTE never maps a page someone else maps (private mappings; a shared file
    # mapping shares its page on purpose)
    for proc in state.procs.values():
        for page, pte in proc.ptes.items():
            vma = proc.vmas[page]
            if pte.pfn is None or not pte.writable or vma.shared:
                continue
            frame = state.frames[pte.pfn]
            assert frame.kind == "anon", f"{proc.name}/{page} writes a {frame.kind} page"
            assert frame.mapcount == 1, f"{proc.name}/{page} writable but mapcount > 1"
            if policy.has_exclusive_bit:
                assert frame.anon_exclusive, f"{proc.name}/{page} writable but not exclusive"
