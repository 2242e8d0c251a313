"""6.13: a write fault on the huge zero page maps a new THP (1ced09e0331f).

Expectations derived by hand from do_huge_pmd_wp_page as merged (Dev Jain, "mm: allocate THP on
hugezeropage wp-fault", pushed to mainline in the 6.13 merge window): on a huge zero PMD,
do_huge_zero_wp_pmd allocates a PMD-sized folio, clears it and maps it by a PMD; only when no
THP can be allocated does it fall back to splitting the PMD (3917c80280c9, 5.8 – 6.12), which
maps the small zero page in 512 PTEs and gives the written subpage a small page of its own.
Before 5.8 do_huge_pmd_wp_page allocated a THP for the huge zero page as well. Nothing else
changed, so 6.13 differs from 6.2 only where a scenario writes the huge zero page.
"""

from __future__ import annotations

import pytest

from engine.policies import POLICIES, policy_for_kernel
from engine.presets import PRESETS
from engine.state import Frame
from engine.trace import Trace, replay

ZERO_WRITE = "P mmap a backing=thp; P read a; P write a v1"
# After the write, a fork shares the page, the parent writes, then the child.
FORKED = ZERO_WRITE + "; P fork C; P write a p2; C write a c2; C read a; P read a"


def frame_of(trace: Trace, step: int, proc: str = "P") -> Frame:
    pte = trace.steps[step].state.procs[proc].ptes["a"]
    assert pte.pfn is not None
    return trace.steps[step].state.frames[pte.pfn]


def test_6_13_covers_6_13_and_6_14_and_cuts_6_2() -> None:
    assert policy_for_kernel((6, 12)).id == "6.2"
    assert policy_for_kernel((6, 13)).id == "6.13"
    assert policy_for_kernel((6, 14)).id == "6.13"
    assert policy_for_kernel((6, 15)).id == "6.15"
    assert POLICIES["6.13"].knobs["thp_cow"] == "split-zero-thp"
    assert POLICIES["6.15"].knobs["thp_cow"] == "split-zero-thp"


@pytest.mark.parametrize("pid", ["6.13", "6.15"])
def test_a_write_to_the_huge_zero_page_maps_a_new_thp(pid: str) -> None:
    trace = replay(ZERO_WRITE, pid)
    pte = trace.steps[3].state.procs["P"].ptes["a"]
    assert pte.pmd and pte.writable and pte.rest_pfn is None
    frame = frame_of(trace, 3)
    assert frame.folio is not None and frame.folio.kind == "thp"
    assert frame.entire_mapcount == 1 and frame.subpage_anon_exclusive(0)
    copy = [e for e in trace.steps[3].events if e.kind == "copy"]
    assert [(e.kernel, e.commit) for e in copy] == [
        ("do_huge_pmd_wp_page → do_huge_zero_wp_pmd", "1ced09e0331f")
    ]


@pytest.mark.parametrize("pid", ["5.8", "5.9", "5.18", "5.19", "6.2"])
def test_5_8_to_6_12_split_the_huge_zero_page_and_give_subpage_0_a_small_page(pid: str) -> None:
    trace = replay(ZERO_WRITE, pid)
    pte = trace.steps[3].state.procs["P"].ptes["a"]
    assert not pte.pmd and pte.writable
    assert frame_of(trace, 3).folio is None
    assert "3917c80280c9" in {e.commit for e in trace.steps[3].events}


@pytest.mark.parametrize("pid", ["4.8", "5.7"])
def test_before_5_8_the_huge_zero_page_write_allocated_a_thp_too(pid: str) -> None:
    trace = replay(ZERO_WRITE, pid)
    assert trace.steps[3].state.procs["P"].ptes["a"].pmd
    assert frame_of(trace, 3).folio is not None


def test_the_child_keeps_its_page_in_6_2_and_copies_in_6_13() -> None:
    """6.2: the parent's copy at step 5 leaves the child the only mapper of the small page
    (page_count 1, reuse at step 6). 6.13: the page is a THP shared by PMD; the parent's write
    splits its PMD and copies subpage 0, but still maps subpages 1…511, so the child's write
    sees the folio's refcount 512 (child PMD 1 + parent's 511 PTEs): split, and copy again."""
    old, new = replay(FORKED, "6.2"), replay(FORKED, "6.13")
    assert frame_of(old, 6, "C").pfn == frame_of(old, 5, "C").pfn
    assert frame_of(new, 6, "C").pfn != frame_of(new, 5, "C").pfn
    assert [e.commit for e in new.steps[6].events if e.kind == "split"] == ["3917c80280c9"]
    for trace in (old, new):
        assert [s.observed.text for s in trace.steps[7:] if s.observed] == ["c2", "p2"]


def test_6_13_is_6_2_for_pte_mapped_thp_reuse_where_6_15_differs() -> None:
    """1da190f4d0a6 (6.15) is not in 6.13: the parent alone again still copies its subpage."""
    text = "P mmap a backing=thp; P write a v1; P pte-map a; P fork C; C exit; P write a v2"
    kinds = {pid: replay(text, pid).verdict_kinds() for pid in ("6.2", "6.13", "6.15")}
    assert kinds["6.2"] == kinds["6.13"] and "needless-copy" in kinds["6.13"]
    assert "needless-copy" not in kinds["6.15"]


def test_a_ro_longterm_pin_of_the_huge_zero_page_unshares_into_a_thp() -> None:
    """FAULT_FLAG_UNSHARE on a huge zero PMD takes the same path (wp_huge_pmd →
    do_huge_pmd_wp_page → do_huge_zero_wp_pmd); the pin then sees the owner's writes."""
    text = "P mmap a backing=thp; P read a; P pin a ro longterm as R; P write a v1; R read"
    for pid, thp in (("6.2", False), ("6.13", True)):
        trace = replay(text, pid)
        assert trace.steps[3].state.procs["P"].ptes["a"].pmd is thp, pid
        assert trace.steps[5].observed is not None and trace.steps[5].observed.text == "v1"
        assert trace.verdict_kinds() == ()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_reads_and_judges_as_under_6_2(name: str) -> None:
    """No preset writes the huge zero page (cow.c fills its memory first)."""
    text = PRESETS[name].text
    old, new = replay(text, "6.2"), replay(text, "6.13")
    assert [s.observed for s in old.steps] == [s.observed for s in new.steps]
    assert old.verdict_kinds() == new.verdict_kinds()
