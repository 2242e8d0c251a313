"""The frame model: a small page today, a large folio's counters ready for the huge-page work.

Expectations follow kernel-cow-semantics.md §1.2–1.3 (refcount, mapcount, pincount), not the
engine's output."""

from __future__ import annotations

from engine.state import GUP_PIN_COUNTING_BIAS, ZERO_VALUE, Folio, Frame
from engine.trace import replay, state_to_json


def small(*, mapcount: int = 0, gets: int = 0, pins: int = 0, exclusive: bool = False) -> Frame:
    return Frame(1, "anon", ZERO_VALUE, mapcount, gets, pins, anon_exclusive=exclusive)


def large(
    order: int,
    mapcounts: tuple[int, ...],
    *,
    gets: int = 0,
    pins: int = 0,
    entire_mapcount: int = 0,
    swapcache: bool = False,
    exclusive: tuple[bool, ...] | None = None,
) -> Frame:
    bits = (False,) * len(mapcounts) if exclusive is None else exclusive
    return Frame(
        1,
        "anon",
        ZERO_VALUE,
        mapcount=sum(mapcounts),
        gets=gets,
        pins=pins,
        swapcache=swapcache,
        folio=Folio(order, mapcounts, bits, entire_mapcount),
    )


def test_a_pin_weighs_1024_on_a_small_page() -> None:
    page = small(mapcount=1, pins=1)
    assert page.refcount == 1 + GUP_PIN_COUNTING_BIAS
    assert page.maybe_dma_pinned
    # Fuzzy on purpose: 1024 FOLL_GET references look pinned too (page_maybe_dma_pinned).
    assert small(gets=GUP_PIN_COUNTING_BIAS).maybe_dma_pinned


def test_a_large_folio_counts_pins_exactly() -> None:
    folio = large(2, (1, 1, 0, 0), pins=1)
    assert folio.refcount == 2 + 1  # two PTE mappings, one pin (+1, and _pincount 1)
    assert folio.maybe_dma_pinned
    assert not large(2, (1, 1, 1, 1), gets=GUP_PIN_COUNTING_BIAS).maybe_dma_pinned


def test_a_pmd_mapping_counts_once_per_folio_and_for_every_subpage() -> None:
    folio = large(9, (0,) * 512, entire_mapcount=1, swapcache=True)
    assert folio.nr_pages == 512
    assert folio.folio_mapcount == 1
    assert folio.subpage_mapcount(0) == folio.subpage_mapcount(511) == 1
    # one reference per PMD mapping, and the swap cache holds one per subpage
    assert folio.refcount == 1 + 512


def test_subpages_keep_their_own_mapcount_and_exclusive_bit() -> None:
    folio = large(1, (2, 0), exclusive=(False, True))
    assert (folio.subpage_mapcount(0), folio.subpage_mapcount(1)) == (2, 0)
    assert (folio.subpage_anon_exclusive(0), folio.subpage_anon_exclusive(1)) == (False, True)
    page = small(mapcount=1, exclusive=True)
    assert page.nr_pages == 1 and page.folio is None
    assert page.subpage_mapcount(0) == 1 and page.subpage_anon_exclusive(0)


def test_base_page_state_json_keeps_its_shape() -> None:
    trace = replay("P mmap a\nP write a v1\nP pin a rw as d\n", "latest")
    (frame,) = [f for f in state_to_json(trace.steps[-1].state)["frames"] if f["pfn"] == 1]
    assert frame == {
        "pfn": 1,
        "kind": "anon",
        "value": {"text": "v1", "writer": "P", "via": "cpu", "step": 2},
        "refcount": 1025,
        "mapcount": 1,
        "pins": 1,
        "gets": 0,
        "swapcache": False,
        "file": None,
        "anon_exclusive": True,
        "folio": None,  # a small page: no folio (DESIGN §10's huge pages carry one)
    }
