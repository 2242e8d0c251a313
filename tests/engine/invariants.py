"""The kernel's accounting laws, checked on any state. Shared by the property tests."""

from __future__ import annotations

from collections import Counter

from engine.policies import Policy
from engine.state import GUP_PIN_COUNTING_BIAS, ZERO_PFN, State


def check_state(state: State, policy: Policy) -> None:
    """Raise AssertionError with a precise message if an accounting law is broken.

    Huge pages (engine.state): a PMD counts once in its folio's entire mapcount; at PTE level
    subpage 0's page counts one mapping (of subpage 0 when it is a folio) and the folio of the
    other subpages one mapping of each of them."""
    mapped: Counter[int] = Counter()  # PTE mappings of a small page, or of a folio's subpage 0
    entire: Counter[int] = Counter()  # PMD mappings of a folio
    rest: Counter[int] = Counter()  # PTE mappings of each of a folio's subpages 1…
    swap_users: Counter[int] = Counter()
    for proc in state.procs.values():
        assert set(proc.ptes) <= set(proc.vmas), f"{proc.name} has a PTE outside its VMAs"
        for page, pte in proc.ptes.items():
            assert (pte.pfn is None) != (pte.swap_slot is None), f"{proc.name}/{page}: {pte}"
            backing = proc.vmas[page].backing
            assert backing != "base" or not (pte.pmd or pte.rest_pfn), f"{proc.name}/{page}"
            if pte.rest_pfn is not None:
                assert not pte.pmd and backing == "thp", f"{proc.name}/{page}: {pte}"
                assert pte.rest_pfn in state.frames, f"{proc.name}/{page} rest freed"
                assert state.frames[pte.rest_pfn].folio is not None, f"{proc.name}/{page}"
                rest[pte.rest_pfn] += 1
            if pte.pmd:
                assert pte.pfn is not None, f"{proc.name}/{page}: a swap PMD"
                if pte.pfn != ZERO_PFN:
                    assert state.frames[pte.pfn].folio is not None, f"{proc.name}/{page}"
                    entire[pte.pfn] += 1
            elif pte.pfn is not None:
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
        # refcount equals the references that exist, per subpage and per folio
        folio = frame.folio
        if folio is None:
            assert frame.mapcount == mapped[pfn], f"#{pfn} mapcount {frame.mapcount}"
            assert not entire[pfn] and not rest[pfn], f"#{pfn} a small page mapped as huge"
        else:
            maps = folio.subpage_mapcounts
            assert folio.entire_mapcount == entire[pfn], f"#{pfn} entire mapcount"
            assert maps[0] == mapped[pfn], f"#{pfn} subpage 0 mapcount {maps[0]}"
            assert set(maps[1:]) == {rest[pfn]}, f"#{pfn} subpages 1… mapcount {set(maps[1:])}"
            assert len(set(folio.subpage_exclusive[1:])) == 1, f"#{pfn} subpages 1… bits"
            assert frame.anon_exclusive == folio.subpage_exclusive[0], f"#{pfn} subpage 0 bit"
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
        pte_maps = mapped[pfn] + rest[pfn] * (frame.nr_pages - 1)
        references = pte_maps + entire[pfn] + gets[pfn] + pins[pfn] * pin_weight + held_by_caches
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
    # mapping shares its page on purpose); a writable PMD maps a folio nobody else maps
    for proc in state.procs.values():
        for page, pte in proc.ptes.items():
            vma = proc.vmas[page]
            if pte.pfn is None or not pte.writable or vma.shared:
                continue
            frame = state.frames[pte.pfn]
            assert frame.kind == "anon", f"{proc.name}/{page} writes a {frame.kind} page"
            if pte.pmd:
                assert frame.folio_mapcount == 1, f"{proc.name}/{page} writable PMD, shared"
            else:
                assert frame.subpage_mapcount(0) == 1, f"{proc.name}/{page} writable, mapcount"
            if policy.has_exclusive_bit:
                assert frame.anon_exclusive, f"{proc.name}/{page} writable but not exclusive"
