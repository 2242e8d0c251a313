"""The bucketed frame table behaves exactly like the plain dict it replaced, and the records
fork and exit build positionally equal the ``_replace`` they stand for."""

from __future__ import annotations

import gc
import threading
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.frame_table import BUCKET, SMALL, FrameTable, FrameTableBuilder, frozen, working_copy
from engine.gc_pause import collector_paused
from engine.state import (
    ZERO_VALUE,
    Folio,
    Frame,
    Pte,
    Value,
    frame_dropped,
    frame_mapped,
    pte_readonly,
)

pfns = st.integers(0, 5 * BUCKET)


def frame(pfn: int, mapcount: int) -> Frame:
    return Frame(pfn, "anon", ZERO_VALUE, mapcount)


# One step's operations on the table: allocate a frame at a pfn above every earlier one (the
# engine's allocator, `State.next_pfn`, never goes back), or change or free one that exists
# (chosen by index).
operations = st.lists(
    st.tuples(st.sampled_from(["alloc", "update", "free"]), st.integers(0, 70), st.integers(0, 3)),
    max_size=12,
)


def assert_same(table: Mapping[int, Frame], model: dict[int, Frame]) -> None:
    assert len(table) == len(model)
    assert list(table) == list(model)  # the dict's insertion order, which is pfn order
    assert list(table.items()) == list(model.items())
    assert list(table.values()) == list(model.values())
    assert table == model and model == table
    assert dict(table) == model
    for pfn in range(-1, max(model, default=0) + 2 * BUCKET):
        assert (pfn in table) == (pfn in model)
        assert table.get(pfn) == model.get(pfn)
        if pfn in model:
            assert table[pfn] == model[pfn]


@pytest.mark.parametrize("small", [0, 8, SMALL])  # buckets always, from 9 frames, as shipped
@given(steps=st.lists(operations, max_size=8))
def test_a_table_equals_a_dict_under_random_steps(
    small: int, steps: list[list[tuple[str, int, int]]]
) -> None:
    model: dict[int, Frame] = {}
    table: Mapping[int, Frame] = {}
    next_pfn = 0
    history: list[tuple[Mapping[int, Frame], dict[int, Frame]]] = [(table, {})]
    for step in steps:
        builder = working_copy(table, small)
        for op, number, mapcount in step:
            if op == "alloc":
                pfn = next_pfn + number
                next_pfn = pfn + 1
            elif not model:
                continue
            else:
                pfn = list(model)[number % len(model)]
            if op == "free":
                del model[pfn]
                del builder[pfn]
            else:
                model[pfn] = builder[pfn] = frame(pfn, mapcount)
            assert builder.get(pfn) == model.get(pfn) and len(builder) == len(model)
            assert list(builder) == list(model)
        before = table
        table = frozen(builder, small)
        assert isinstance(table, FrameTable) == (
            len(model) > small or isinstance(before, FrameTable)
        )
        assert_same(table, model)
        if isinstance(before, FrameTable) and isinstance(table, FrameTable):
            changed, gone = table.changed_since(before)
            old = history[-1][1]
            assert changed == [f for p, f in model.items() if old.get(p) != f]
            assert sorted(gone) == sorted(p for p in old if p not in model)
        history.append((table, dict(model)))
    for old_table, old_model in history:  # no later step changed an earlier table
        assert_same(old_table, old_model)


@given(st.dictionaries(pfns, st.integers(0, 3)))
def test_a_table_of_a_dict_holds_that_dict_in_pfn_order(entries: dict[int, int]) -> None:
    model = {pfn: frame(pfn, entries[pfn]) for pfn in sorted(entries)}
    assert_same(FrameTable.of(model), model)


def test_a_step_copies_only_the_buckets_it_writes() -> None:
    table = FrameTable.of({pfn: frame(pfn, 1) for pfn in range(4 * BUCKET)})
    builder = FrameTableBuilder(table)
    builder[BUCKET + 1] = frame(BUCKET + 1, 2)
    after = builder.freeze()
    shared = [a is b for a, b in zip(table.buckets, after.buckets, strict=True)]
    assert shared == [True, False, True, True]


def test_a_missing_pfn_raises_key_error() -> None:
    table = FrameTable.of({1: frame(1, 1)})
    for pfn in (0, 2, -1, 10 * BUCKET):
        try:
            table[pfn]
        except KeyError:
            continue
        raise AssertionError(f"{pfn} found")


folios = st.none() | st.builds(
    Folio, st.integers(1, 2), st.tuples(st.integers(0, 2)), st.tuples(st.booleans())
)
frames = st.builds(
    Frame,
    st.integers(1, 9),
    st.sampled_from(["anon", "pagecache"]),
    st.builds(Value, st.text(max_size=2), st.just("P"), st.just("cpu"), st.integers(0, 9)),
    st.integers(0, 4),
    st.integers(0, 4),
    st.integers(0, 4),
    st.booleans(),
    st.none() | st.just("F"),
    st.booleans(),
    folios,
)
ptes = st.builds(
    Pte,
    st.none() | st.integers(0, 9),
    st.none() | st.integers(1, 9),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.none() | st.integers(1, 9),
)


@given(frames, st.integers(-2, 2), st.booleans(), st.integers(0, 2), st.integers(0, 2))
def test_positional_records_equal_their_replace(
    f: Frame, delta: int, exclusive: bool, gets: int, pins: int
) -> None:
    assert frame_mapped(f, delta, exclusive) == f._replace(
        mapcount=f.mapcount + delta, anon_exclusive=exclusive
    )
    left = f.mapcount - 1
    assert frame_dropped(f, 1, gets, pins) == f._replace(
        mapcount=left,
        gets=f.gets - gets,
        pins=f.pins - pins,
        # a large folio's bits move with its mappings (folio_mapped), not with references
        anon_exclusive=f.anon_exclusive and (left > 0 or f.folio is not None),
    )


@given(ptes)
def test_readonly_pte_equals_its_replace(pte: Pte) -> None:
    assert pte_readonly(pte) == pte._replace(writable=False)
    assert (pte_readonly(pte) is pte) == (not pte.writable)


def test_the_collector_comes_back_after_overlapping_pauses() -> None:
    assert gc.isenabled()
    inner_started = threading.Event()
    outer_may_end = threading.Event()
    seen: list[bool] = []

    def inner() -> None:
        with collector_paused():
            inner_started.set()
            outer_may_end.wait(5)
        seen.append(gc.isenabled())

    with collector_paused():
        thread = threading.Thread(target=inner)
        thread.start()
        inner_started.wait(5)
    seen.append(gc.isenabled())  # the other replay is still running: still paused
    outer_may_end.set()
    thread.join(5)
    assert seen == [False, True]
    assert gc.isenabled()


def test_the_collector_stays_off_if_it_was_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
