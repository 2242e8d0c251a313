"""6.15: COW reuse of a PTE-mapped THP mapped by one process alone (1da190f4d0a6).

Expectations derived by hand from __wp_can_reuse_large_anon_folio as merged (David Hildenbrand,
"mm: Copy-on-Write (COW) reuse support for PTE-mapped THP", in v6.15-rc1): a subpage that is
not PageAnonExclusive is reused iff the folio is mapped more than once, not "maybe mapped
shared" (every mapping in the faulting MM), and folio_large_mapcount == folio_ref_count. Before
it (5.9 – 6.14) page_count() of the subpage is the folio's refcount, > 1 while the other
subpages are mapped: always a copy. Nothing else changed, so every scenario without a
PTE-mapped THP reads and judges the same under 6.2 and 6.15.
"""

from __future__ import annotations

import pytest

from engine.policies import LATEST
from engine.presets import PRESETS
from engine.trace import Trace, replay

PTE_THP = "P mmap a backing=thp; P write a v1; P pte-map a; P fork C; "


def kinds(trace: Trace, step: int) -> list[str]:
    return [e.kind for e in trace.steps[step].events]


def test_latest_is_6_15() -> None:
    assert LATEST == "6.15"


def test_the_parent_alone_again_reuses_its_pte_mapped_thp_where_6_2_copied_needlessly() -> None:
    text = PTE_THP + "C exit; P write a v2"
    old, new = replay(text, "6.2"), replay(text, "6.15")
    assert "copy" in kinds(old, 6) and "needless-copy" in old.verdict_kinds()
    assert kinds(new, 6) == ["reuse", "write"] and new.verdict_kinds() == ()
    reuse = new.steps[6].events[0]
    assert (reuse.kernel, reuse.commit) == (
        "do_wp_page → __wp_can_reuse_large_anon_folio",
        "1da190f4d0a6",
    )
    assert (reuse.inputs["large_mapcount"], reuse.inputs["refcount"]) == (512, 512)
    # The reused subpage is marked exclusive: the next write takes no fault at all.
    frame = new.steps[6].state.frames[1]
    assert frame.subpage_anon_exclusive(0) and not frame.subpage_anon_exclusive(1)


def test_a_folio_the_child_still_maps_is_copied_in_both() -> None:
    """Two MMs map it: "maybe mapped shared", copy."""
    text = PTE_THP + "P write a v2; C read a"
    for era in ("6.2", "6.15"):
        trace = replay(text, era)
        assert "copy" in kinds(trace, 5), era
        assert trace.steps[6].observed is not None and trace.steps[6].observed.text == "v1"
    decision = replay(text, "6.15").steps[5].events[0]
    assert decision.inputs["mapped_by_mms"] == 2


def test_a_reference_beyond_the_mappings_forces_the_copy() -> None:
    """A pipe's reference makes refcount 513 != large mapcount 512: copy, and the pipe keeps
    the old data in both eras (CVE-2020-29374 stays closed)."""
    text = PTE_THP + "C exit; P vmsplice a as pipe; P write a v2; pipe read"
    for era in ("6.2", "6.15"):
        trace = replay(text, era)
        assert "copy" in kinds(trace, 7), era
        assert trace.steps[8].observed is not None and trace.steps[8].observed.text == "v1"
        assert "leak" not in trace.verdict_kinds()


def test_a_ro_pin_unshares_without_a_copy_from_6_15() -> None:
    """FAULT_FLAG_UNSHARE takes the same reuse test (do_wp_page → wp_can_reuse_anon_folio): the
    R/O long-term pin keeps the parent's folio instead of a copy of subpage 0."""
    text = PTE_THP + "C exit; P pin a ro longterm as R; P write a v2; R read"
    old, new = replay(text, "6.2"), replay(text, "6.15")
    assert "copy" in kinds(old, 6)
    assert "unshare" in kinds(new, 6) and "copy" not in kinds(new, 6)
    for trace in (old, new):  # reliable either way: the pin sees the write
        assert trace.steps[8].observed is not None and trace.steps[8].observed.text == "v2"


def test_a_pmd_mapped_thp_is_decided_as_in_6_2() -> None:
    """do_huge_pmd_wp_page did not change: refcount == 1 reuses the whole THP."""
    text = "P mmap a backing=thp; P write a v1; P fork C; C exit; P write a v2"
    assert kinds(replay(text, "6.2"), 5) == kinds(replay(text, "6.15"), 5) == ["reuse", "write"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_without_a_pte_mapped_thp_is_the_same_as_under_6_2(name: str) -> None:
    text = PRESETS[name].text
    if "pte-map" in text:
        pytest.skip("a PTE-mapped THP: the one place 6.15 differs")
    old, new = replay(text, "6.2"), replay(text, "6.15")
    assert [s.observed for s in old.steps] == [s.observed for s in new.steps]
    assert old.verdict_kinds() == new.verdict_kinds()
