"""The kernel's decision at a step, as the picture shows it on the frame it concerns.

The events of a step say what the write (or unshare, or GUP) fault decided: the page was
copied (``copy``: `wp_page_copy()`), kept (``reuse``: `wp_page_reuse()`), or made exclusive in
place (``unshare``: `FAULT_FLAG_UNSHARE`, 5.19). The picture writes that word on the frame, so a
class sees the decision where it happens rather than only in the narration.

A page reused while a pipe, a GET or a pin still holds it is *at risk*: the writer now owns a
page someone else reads or writes behind its back (CVE-2020-29374 under the mapcount rule, 5.7
and earlier). Nothing has gone wrong yet — the verdict comes with the read — which is exactly
the moment a teacher wants to stop at. This module only reads the trace: the rule that reused
the page is the engine's (`do_wp_page()` in each era's policy).
"""

from __future__ import annotations

from app.picture.scene import Decision, RefMark
from engine.state import Frame
from engine.trace import Trace


def frame_decisions(trace: Trace, k: int) -> dict[int, Decision]:
    """pfn → what step ``k`` decided about that frame (a copy is written on the new frame)."""
    step = trace.steps[k]
    state = step.state
    found: dict[int, Decision] = {}
    for event in step.events:
        if event.kind == "copy" and event.new_pfn is not None:
            source = f" of pfn {event.pfn}" if event.pfn is not None else ""
            if event.pfn is not None and _copied_out_of_folio(trace, k, event.pfn, event.new_pfn):
                source += " #0"  # one subpage of a large folio, not the whole of it
            found[event.new_pfn] = Decision(f"COPY{source}")
        elif event.kind == "unshare" and event.pfn is not None:
            found[event.pfn] = Decision("UNSHARE")
        elif event.kind == "reuse" and event.pfn is not None:
            holders = [
                f"{ref.holder} {ref.name}" if ref.holder != ref.name else ref.name
                for ref in state.refs.values()
                if ref.pfn == event.pfn
            ]
            found[event.pfn] = Decision("REUSE", ", ".join(holders))
    return found


def at_risk_marks(trace: Trace, k: int, decisions: dict[int, Decision]) -> dict[str, RefMark]:
    """The references that hold a page step ``k`` reused for a writer: drawn at risk."""
    marks: dict[str, RefMark] = {}
    step = trace.steps[k]
    for event in step.events:
        if event.kind != "reuse" or event.pfn is None:
            continue
        decision = decisions.get(event.pfn)
        if decision is None or not decision.at_risk:
            continue
        for ref in step.state.refs.values():
            if ref.pfn == event.pfn:
                who = event.proc or "the writer"
                marks[ref.name] = RefMark("at-risk", f"{who} reused pfn {event.pfn} for writing")
    return marks


def _copied_out_of_folio(trace: Trace, k: int, pfn: int, new_pfn: int) -> bool:
    """Whether step ``k`` copied a small page out of the large folio ``pfn``."""
    if k == 0:
        return False
    source = trace.steps[k - 1].state.frames.get(pfn)
    copy = trace.steps[k].state.frames.get(new_pfn)
    return (
        source is not None and source.folio is not None and copy is not None and copy.folio is None
    )


def split_origins(trace: Trace, k: int) -> dict[int, tuple[int, str]]:
    """Small pages that a COW (a write or unshare fault, or fork's early copy) copied out of a
    large folio up to step ``k``: pfn → (the folio's pfn, "THP" or "hugetlb").

    The picture says where such a page came from for as long as it lives: a 4 KiB page beside a
    2 MiB folio is the moment a THP stops being one page for that process (5.8's and 5.18's
    do_huge_pmd_wp_page fall back to PTEs and copy one subpage; fork copies a pinned folio's
    subpage for the child). A copy event names its new page (``new_pfn``), or else the page is
    the one a huge-page VMA of the copied page's name maps from that step on. pfns are never
    reused (`State.next_pfn`), so a pfn found here means the same page at every later step.
    """
    found: dict[int, tuple[int, str]] = {}
    for i in range(1, k + 1):
        before, step = trace.steps[i - 1].state, trace.steps[i]
        if step.state.next_pfn == before.next_pfn:
            continue  # a copy allocates a page: a step that allocated none copied nothing
        sources: dict[str, int] = {}  # page name -> the folio a copy or fork event copied
        for event in step.events:
            if event.kind not in ("copy", "fork") or event.pfn is None:
                continue
            source = before.frames.get(event.pfn)
            if source is None or source.folio is None:
                continue
            if event.new_pfn is not None:
                if _copied_out_of_folio(trace, i, event.pfn, event.new_pfn):
                    found[event.new_pfn] = (event.pfn, _kind(source))
            elif event.page is not None:
                sources[event.page] = event.pfn
        if not sources:
            continue
        new = range(before.next_pfn, step.state.next_pfn)
        for proc in step.state.procs.values():
            for page, folio_pfn in sources.items():
                pte, vma = proc.ptes.get(page), proc.vmas.get(page)
                pfn = pte.pfn if pte is not None else None
                if pfn is None or pfn not in new or vma is None or not vma.huge:
                    continue
                small = step.state.frames.get(pfn)
                if small is not None and small.folio is None and pfn not in found:
                    found[pfn] = (folio_pfn, _kind(before.frames[folio_pfn]))
    return found


def _kind(frame: Frame) -> str:
    return "hugetlb" if frame.folio is not None and frame.folio.kind == "hugetlb" else "THP"
