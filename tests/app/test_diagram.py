"""The diagram: well-formed SVG, a layout that never moves, and states drawn in words and shapes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from app.picture.layout import compute_layout
from app.picture.scene import RefMark, SceneOptions, build_scene
from app.picture.shapes import Group, Rect, Scene, Text
from app.picture.svg import draw
from app.views.runs import Run, run
from app.views.sim import proc_notes, ref_marks
from engine.commands import RefKind
from engine.policies import POLICIES
from engine.presets import PRESETS
from engine.state import (
    ZERO_PFN,
    ZERO_VALUE,
    Frame,
    Proc,
    Pte,
    Ref,
    State,
    Value,
    Vma,
)

SVG = "{http://www.w3.org/2000/svg}"


def scenes(r: Run) -> Iterator[Scene]:
    for k, step in enumerate(r.trace.steps):
        yield build_scene(
            r.layout,
            step.state,
            r.trace.steps[k - 1].state if k else None,
            SceneOptions(
                has_exclusive_bit=bool(r.policy.has_exclusive_bit),
                ref_marks=ref_marks(r.trace, k),
                proc_notes=proc_notes(r.trace, k),
            ),
        )


def groups(scene: Scene, cls: str) -> list[Group]:
    return [g for g in scene.groups if cls in g.cls.split()]


def texts(group: Group) -> list[str]:
    return [item.text for item in group.items if isinstance(item, Text)]


def anchor(group: Group) -> tuple[float, float]:
    rect = next(item for item in group.items if isinstance(item, Rect))
    return rect.x, rect.y


@pytest.mark.parametrize("policy", ["4.8", "5.7", "5.19"])
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_step_of_every_preset_is_well_formed_svg(name: str, policy: str) -> None:
    for scene in scenes(run(PRESETS[name].text, policy)):
        root = ET.fromstring(draw(scene))
        assert root.tag == f"{SVG}svg"
        view_box = [float(n) for n in root.attrib["viewBox"].split()]
        assert view_box == [0, 0, scene.width, scene.height]
        assert root.find(f"{SVG}title") is not None


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_nothing_moves_from_step_to_step(name: str) -> None:
    """Every box keeps its place across the whole trace: pressing → never makes things jump."""
    places: dict[str, set[tuple[float, float]]] = {}
    sizes: set[tuple[float, float]] = set()
    for scene in scenes(run(PRESETS[name].text, "5.7")):
        sizes.add((scene.width, scene.height))
        for group in scene.groups:
            if group.key and any(isinstance(i, Rect) for i in group.items):
                places.setdefault(group.key, set()).add(anchor(group))
    assert len(sizes) == 1
    moved = {key: where for key, where in places.items() if len(where) > 1}
    assert not moved


def _value(text: str, writer: str = "P", step: int = 1) -> Value:
    return Value(text, writer, "cpu", step)


def _ref(name: str, pfn: int, kind: RefKind = "pin", owner: str = "P") -> Ref:
    return Ref(name, kind, owner, "a", pfn, False, True, False, False, 3)


def hand_built(pfn_p: int, pfn_ref: int, writable: bool) -> State:
    """P maps `a` at ``pfn_p``; a long-term pin `dev` holds ``pfn_ref``."""
    frames = {
        ZERO_PFN: Frame(ZERO_PFN, "zero", ZERO_VALUE),
        1: Frame(1, "anon", _value("one"), mapcount=1 if pfn_p == 1 else 0, pins=1),
    }
    if pfn_p == 2:
        frames[2] = Frame(2, "anon", _value("two", step=5), mapcount=1, anon_exclusive=True)
    proc = Proc(
        "P",
        None,
        {"a": Vma("a")},
        {"a": Pte(pfn=pfn_p, writable=writable, dirty=writable)},
        has_pinned=True,
    )
    return State(
        procs={"P": proc},
        frames=frames,
        refs={"dev": _ref("dev", pfn_ref)},
        swap={},
        files={},
    )


def test_changed_items_are_marked_with_a_delta_not_only_colour() -> None:
    before = hand_built(1, 1, writable=False)
    after = hand_built(2, 1, writable=True)
    layout = compute_layout([before, after])
    scene = build_scene(layout, after, before, SceneOptions(has_exclusive_bit=True))
    changed = {g.key for g in scene.groups if "changed" in g.cls.split()}
    assert {"pte:P:a", "frame:1", "frame:2"} <= changed
    for group in scene.groups:
        if "changed" in group.cls.split() and group.key:
            assert "Δ" in texts(group), group.key
    unchanged = build_scene(layout, after, after, SceneOptions(has_exclusive_bit=True))
    assert not [g for g in unchanged.groups if "changed" in g.cls.split()]


def test_stale_reference_is_dashed_and_labelled_in_words() -> None:
    state = hand_built(2, 1, writable=True)
    layout = compute_layout([state])
    scene = build_scene(
        layout,
        state,
        state,
        SceneOptions(True, ref_marks={"dev": RefMark("stale", "P maps pfn 2")}),
    )
    (box,) = groups(scene, "ref")
    assert "stale" in box.cls.split()
    assert "STALE" in texts(box)
    assert any(isinstance(i, Rect) and i.dash for i in box.items)
    (arrow,) = groups(scene, "ref-arrow")
    assert "stale" in arrow.cls.split()
    assert all(i.dash for i in arrow.items if i.kind == "path")


def test_exclusive_bit_is_drawn_only_in_eras_that_have_it() -> None:
    state = hand_built(2, 1, writable=True)
    layout = compute_layout([state])
    with_bit = build_scene(layout, state, state, SceneOptions(has_exclusive_bit=True))
    without = build_scene(layout, state, state, SceneOptions(has_exclusive_bit=False))
    frame2 = next(g for g in with_bit.groups if g.key == "frame:2")
    assert any("exclusive" in t for t in texts(frame2))
    frame2 = next(g for g in without.groups if g.key == "frame:2")
    assert not any("exclusive" in t for t in texts(frame2))


def test_pte_flags_and_frame_counters_are_written_out() -> None:
    state = hand_built(1, 1, writable=False)
    scene = build_scene(compute_layout([state]), state, state, SceneOptions(False))
    row = next(g for g in scene.groups if g.key == "pte:P:a")
    assert "RO" in " ".join(texts(row))
    frame = next(g for g in scene.groups if g.key == "frame:1")
    assert "refcount 1025 · mapcount 1" in texts(frame)  # a FOLL_PIN counts 1024
    assert "pins 1" in " ".join(texts(frame))
    zero = next(g for g in scene.groups if g.key == f"frame:{ZERO_PFN}")
    assert any("ZERO PAGE" in t for t in texts(zero))


def test_arrowheads_of_a_shared_frame_are_spread_so_they_can_be_counted() -> None:
    r = run("P mmap a;P write a;P fork C;C fork D", "5.7")
    scene = next(reversed(list(scenes(r))))
    heads = [
        i.points.split()[0] for g in groups(scene, "map-arrow") for i in g.items if i.kind == "poly"
    ]
    assert len(heads) == 3 and len(set(heads)) == 3


def test_swap_entry_page_cache_and_files_are_drawn_as_such() -> None:
    r = run("file F data;P mmap a file=F;P read a;P mmap b;P write b;P swapout b", "6.2")
    scene = next(reversed(list(scenes(r))))
    assert groups(scene, "pagecache")
    assert groups(scene, "swapslot")
    assert groups(scene, "swap-arrow")
    assert groups(scene, "file")
    row = next(g for g in scene.groups if g.key == "pte:P:b")
    assert any("swap #" in t for t in texts(row))


def test_freed_frames_and_exited_processes_leave_a_labelled_ghost() -> None:
    r = run("P mmap a;P write a;P fork C;C exit;P munmap a", "5.7")
    steps = list(scenes(r))
    assert groups(steps[4], "gone") and "C (exited)" in texts(groups(steps[4], "proc")[-1])
    freed = [g for g in steps[5].groups if g.cls.startswith("frame gone")]
    assert freed and "freed" in texts(freed[0])


def test_leak_verdict_about_a_process_is_noted_in_its_header() -> None:
    r = run(PRESETS["rdma-pin-before-fork"].text, "5.7")
    scene = list(scenes(r))[7]
    noted = groups(scene, "noted")
    assert [g.key for g in noted] == ["proc:C"]
    assert any("leak at step 7" in t for t in texts(noted[0]))


def test_layout_of_many_frames_wraps_into_columns() -> None:
    text = ";".join(["P mmap a", "P write a"] + [f"P fork C{i};P write a" for i in range(12)])
    r = run(text, "5.7")
    xs = {x for x, _ in r.layout.frames.values()}
    assert len(xs) > 1
    assert r.layout.height < 3000


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_picture_and_text_agree_on_stale_references(policy: str) -> None:
    r = run(PRESETS["cow-ro-pin-shared"].text, policy)
    last = list(scenes(r))[-1]
    stale_in_picture = {g.key for g in groups(last, "ref") if "stale" in g.cls.split()}
    verdict_stale = any(v.kind == "stale" for v in r.trace.verdicts)
    assert bool(stale_in_picture) == verdict_stale


def test_text_in_the_picture_is_escaped_even_if_the_language_ever_allowed_markup() -> None:
    """Names and values are restricted by the parser; the SVG does not rely on it."""
    evil = '<script>x</script>&"'
    frames = {
        ZERO_PFN: Frame(ZERO_PFN, "zero", ZERO_VALUE),
        1: Frame(1, "anon", _value(evil), mapcount=1),
    }
    proc = Proc(evil, None, {evil: Vma(evil)}, {evil: Pte(pfn=1, writable=True)})
    state = State(procs={evil: proc}, frames=frames, refs={}, swap={}, files={})
    scene = build_scene(compute_layout([state]), state, None, SceneOptions(False, title=evil))
    svg = draw(scene)
    root = ET.fromstring(svg)  # well-formed: nothing broke out of its attribute or element
    assert "<script>" not in svg
    assert not list(root.iter(f"{SVG}script"))
    assert evil in {t.text for t in root.iter(f"{SVG}text")}
