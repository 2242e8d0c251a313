"""A huge page in the picture and its text twin (DESIGN.md §10): one folio with its subpages
summarised, its counters, PMD and PTE mappings told apart by line and label, THP from hugetlb,
and a small page copied out of a folio saying so. States are built by hand
(tests/app/folio_states.py), so these fix what the picture shows whatever the engine does."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from collections.abc import Mapping

import pytest

from app.picture.layout import FOLIO_H, FRAME_H, compute_layout
from app.picture.png import SCALE, svg_to_png
from app.picture.scene import SUB0_Y, SUB_H, SUB_REST_Y, SceneOptions, build_scene
from app.picture.shapes import Group, Path, Poly, Rect, Scene, Text
from app.picture.svg import draw
from app.views.decisions import split_origins
from app.views.tables import state_table
from engine.events import Event
from engine.policies import get_policy
from engine.state import Pte, State
from engine.syntax import parse
from engine.trace import Step, Trace
from tests.app import folio_states as fs


def scene_of(
    state: State,
    exclusive_bit: bool = True,
    split_from: Mapping[int, tuple[int, str]] | None = None,
) -> Scene:
    options = SceneOptions(has_exclusive_bit=exclusive_bit, split_from=split_from or {})
    return build_scene(compute_layout([state]), state, None, options)


def groups(scene: Scene, cls: str) -> list[Group]:
    return [g for g in scene.groups if set(cls.split()) <= set(g.cls.split())]


def texts(group: Group) -> list[str]:
    return [item.text for item in group.items if isinstance(item, Text)]


def the(scene: Scene, cls: str) -> Group:
    found = groups(scene, cls)
    assert len(found) == 1, f"{len(found)} groups of class {cls!r}"
    return found[0]


def arrow_end(group: Group) -> tuple[float, float]:
    head = next(item for item in group.items if isinstance(item, Poly))
    x, y = head.points.split()[0].split(",")
    return float(x), float(y)


def test_a_thp_is_one_folio_box_with_its_counters_and_two_subpage_boxes() -> None:
    scene = scene_of(fs.pmd_mapped_after_fork())
    folio = the(scene, "frame folio thp")
    words = texts(folio)
    assert words[0] == "THP · pfn 1 · 2 MiB"
    assert {"refcount 2", "pincount 0", "entire mapcount 2"} <= set(words)
    # page_mapcount() of each subpage counts the two PMDs; after fork none is exclusive.
    assert words[-6:] == [
        "subpage #0 · reads, writes",
        "mapcount 2",
        "exclusive ✗",
        "subpages #1–511, each",
        "mapcount 2",
        "exclusive ✗",
    ]
    # Readable, not 512 boxes: two outlines, the wash-free box and two subpage boxes.
    assert sum(isinstance(item, Rect) for item in folio.items) == 4
    assert len(groups(scene, "frame")) == 2  # the zero page and the folio


def test_hugetlb_is_labelled_as_such() -> None:
    scene = scene_of(fs.pmd_mapped_after_fork("hugetlb"))
    folio = the(scene, "frame folio hugetlb")
    assert texts(folio)[0] == "hugetlb · pfn 1 · 2 MiB"
    assert not groups(scene, "frame folio thp")
    rows = [texts(g) for g in groups(scene, "pte")]
    assert all("hugetlb 2 MiB" in row for row in rows)


def test_pmd_mappings_are_double_lines_labelled_pmd_ending_at_the_folio() -> None:
    state = fs.pmd_mapped_after_fork()
    scene = scene_of(state)
    layout = compute_layout([state])
    fx, fy = layout.frames[1]
    arrows = groups(scene, "map-arrow pmd")
    assert len(arrows) == 2
    for arrow in arrows:
        assert "PMD" in texts(arrow)
        lines = [item for item in arrow.items if isinstance(item, Path)]
        assert len(lines) == 2 and lines[1].stroke == "#FFFFFF"  # a line inside a line
        x, y = arrow_end(arrow)
        assert x == fx and fy < y < fy + FRAME_H  # the folio's head, not a subpage
    assert not groups(scene, "map-arrow pte")
    assert [t for g in groups(scene, "pte") for t in texts(g) if "→" in t] == ["PMD → pfn 1"] * 2


def test_pte_mappings_are_single_lines_to_subpage_0_and_to_the_others() -> None:
    state = fs.pte_mapped_pinned()
    scene = scene_of(state)
    fx, fy = compute_layout([state]).frames[1]
    sub0 = [g for g in groups(scene, "map-arrow pte") if "rest" not in g.cls.split()]
    rest = groups(scene, "map-arrow pte rest")
    assert len(sub0) == 1 and len(rest) == 1
    assert "PTE #0" in texts(sub0[0]) and "511 PTEs" in texts(rest[0])
    for arrow, top in ((sub0[0], SUB0_Y), (rest[0], SUB_REST_Y)):
        assert sum(isinstance(item, Path) for item in arrow.items) == 1
        x, y = arrow_end(arrow)
        assert x == fx and fy + top <= y <= fy + top + SUB_H
    assert not groups(scene, "map-arrow pmd")


def test_a_pinned_folio_counts_its_pin_exactly_not_with_the_1024_bias() -> None:
    scene = scene_of(fs.pte_mapped_pinned())
    folio = the(scene, "frame folio")
    # 512 PTE mappings and one pin: 513, where a small page would say 1025 for one mapping.
    assert {"refcount 513", "pincount 1"} <= set(texts(folio))
    assert "exact" in folio.title and "1024" in folio.title
    ref = the(scene, "ref-arrow")
    x, y = arrow_end(ref)
    fx, fy = compute_layout([fs.pte_mapped_pinned()]).frames[1]
    assert fy + SUB0_Y <= y <= fy + SUB0_Y + SUB_H  # the pin holds subpage 0


def test_eras_without_the_exclusive_bit_do_not_show_it() -> None:
    folio = the(scene_of(fs.pmd_mapped_after_fork(), exclusive_bit=False), "frame folio")
    assert not [t for t in texts(folio) if "exclusive" in t]
    assert "mapcount 2" in texts(folio)


def test_a_small_page_copied_out_of_a_folio_says_so() -> None:
    state = fs.split_by_cow()
    scene = scene_of(state, split_from={2: (1, "THP")})
    small = the(scene, "frame split-off")
    assert texts(small)[0] == "pfn 2 · 4 KiB from THP 1"
    assert "copied out of subpage #0 of the THP folio pfn 1" in small.title
    # C maps subpage 0 there and the other 511 subpages still in the folio.
    rows = {g.key: texts(g) for g in groups(scene, "pte")}
    assert "#0 → pfn 2 · rest → 1" in rows["pte:C:a"]
    assert "PTEs → pfn 1" in rows["pte:P:a"]
    ends = {g.key: arrow_end(g) for g in groups(scene, "map-arrow")}
    layout = compute_layout([state])
    assert ends["map:C:a"][1] == pytest.approx(layout.frames[2][1] + FRAME_H / 2)
    # Without the origin the same page is an ordinary anonymous page.
    plain = scene_of(state)
    assert not groups(plain, "split-off")


def test_a_folio_takes_two_frames_places_and_nothing_overlaps_it() -> None:
    layout = compute_layout([fs.split_by_cow()])
    assert layout.folios == frozenset({1})
    (_, y0), (_, y1), (_, y2) = (layout.frames[p] for p in (0, 1, 2))
    assert y1 - y0 == y2 - y1 - (FOLIO_H - FRAME_H)
    assert y2 >= y1 + FOLIO_H


def test_the_svg_of_a_folio_is_well_formed() -> None:
    for make in (fs.pmd_mapped_after_fork, fs.pte_mapped_pinned, fs.split_by_cow):
        ET.fromstring(str(draw(scene_of(make(), split_from={2: (1, "THP")}))))


def test_the_text_twin_says_what_the_picture_shows() -> None:
    table = state_table(fs.split_by_cow(), None, True, {}, split_from={2: (1, "THP")})
    frames = {row.pfn: row for row in table.frames}
    assert frames[1].what.startswith("THP folio · pfn 1 · 512 subpages")
    assert frames[1].counters == "refcount 1023 · pincount 0"
    assert frames[1].extras == (
        "entire mapcount 0, subpage #0: mapcount 1 · exclusive ✗, "
        "subpages #1–511: mapcount 2 · exclusive ✗"
    )
    assert "4 KiB copied out of subpage #0 of THP pfn 1" in frames[2].what
    maps = {(row.proc, row.page): row for row in table.ptes}
    assert maps["C", "a"].maps == (
        "subpage #0 by a PTE to pfn 2; subpages #1–511 by 511 PTEs to the folio pfn 1"
    )
    assert "THP 2 MiB" in maps["C", "a"].vma
    pmd = state_table(fs.pmd_mapped_after_fork("hugetlb"), None, True, {})
    assert {row.maps for row in pmd.ptes} == {"pfn 1, the whole 2 MiB folio, by one PMD"}
    assert pmd.frames[1].what.startswith("hugetlb folio")


def test_a_folio_exports_as_png() -> None:
    scene = scene_of(fs.split_by_cow(), split_from={2: (1, "THP")})
    png = svg_to_png(str(draw(scene)), scene.width, scene.height)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert (width, height) == (round(scene.width * SCALE), round(scene.height * SCALE))


def _trace(*states: tuple[State, tuple[Event, ...]]) -> Trace:
    steps = tuple(Step(i, None, None, state, events) for i, (state, events) in enumerate(states))
    return Trace(get_policy("6.2"), parse(""), steps, ())


def test_a_page_copied_out_of_a_folio_is_found_in_the_trace_and_stays_so() -> None:
    shared = fs.state(
        [
            fs.proc("P", None, Pte(1, dirty=True, rest_pfn=1)),
            fs.proc("C", "P", Pte(1, dirty=True, rest_pfn=1)),
        ],
        [fs.folio(1, sub0=2, rest=2, exclusive=(False, False))],
    )
    copy = Event("copy", "C's write copies subpage 0", proc="C", page="a", pfn=1, new_pfn=2)
    trace = _trace((shared, ()), (fs.split_by_cow(), (copy,)), (fs.split_by_cow(), ()))
    assert split_origins(trace, 0) == {}
    assert split_origins(trace, 1) == split_origins(trace, 2) == {2: (1, "THP")}
    # A copy of a small page is an ordinary COW: nothing to say.
    small = Event("copy", "", pfn=2, new_pfn=3)
    after = fs.split_by_cow()
    after = after._replace(frames={**after.frames, 3: after.frames[2]._replace(pfn=3)})
    assert 3 not in split_origins(_trace((fs.split_by_cow(), ()), (after, (small,))), 1)


def test_a_page_fork_copied_out_of_a_pinned_folio_is_found_without_a_new_pfn() -> None:
    # fork's early copy of a pinned folio's subpage names only the folio it copied; the copy is
    # the new small page the child's huge-page VMA of that name maps from that step on.
    pinned = fs.state(
        [fs.proc("P", None, Pte(1, writable=True, dirty=True, rest_pfn=1))],
        [fs.folio(1, sub0=1, rest=1, pins=1)],
    )
    fork = Event("fork", "subpage 0 is copied for C", proc="P", page="a", pfn=1)
    trace = _trace((pinned, ()), (fs.split_by_cow(), (fork,)))
    assert split_origins(trace, 1) == {2: (1, "THP")}
