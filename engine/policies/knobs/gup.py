"""get_user_pages: what a read GUP does on a COW mapping, when a R/O pin unshares first, and what
proves to a FOLL_FORCE write that COW already happened.

`gup_read` is the August 2020 argument: 5.8 broke COW for every reference-taking read GUP as if
it wrote (17839856fd58), Peter Xu proposed doing it without calling it a write
(FAULT_FLAG_BREAK_COW), Linus wanted the break to stay the default with an explicit opt-out
(READ_WRONG_SIDE_COW_OK). `ro_pin` is where that idea landed in 5.19 (FAULT_FLAG_UNSHARE).
"""

from __future__ import annotations

from engine.policies.decision import NOTHING, Decision, GupRequest, counts
from engine.policies.knobs.choice import EXCLUSIVE_BIT, Choice
from engine.state import Frame, Pte, Vma


class GupRead(Choice):
    """A read GUP (FOLL_GET or FOLL_PIN, no FOLL_WRITE) on a COW mapping: break COW first?

    Outcome "fault" breaks it with a real write fault (uffd-wp notified, PTE made writable);
    "unshare" without calling it a write; "skip" records a caller's opt-out; None: nothing."""

    knob = "gup_read"

    def gup_breaks_cow(self, req: GupRequest, vma: Vma) -> Decision | None:
        return None


class NoBreak(GupRead):
    id = "none"
    label = "never breaks COW"
    kernel = "follow_page_pte"
    commit = ""
    why = (
        "a read GUP takes a reference on whatever the PTE maps; a later COW may leave it on the "
        "wrong side"
    )


class BreakAsWrite(GupRead):
    id = "break-as-write"
    label = "break COW as if it wrote"
    kernel = "should_force_cow_break"
    commit = "17839856fd58"
    why = (
        "every reference-taking GUP on a COW mapping is a write: the leak closes, but a read "
        "raises a userfaultfd write-protect fault"
    )

    def gup_breaks_cow(self, req: GupRequest, vma: Vma) -> Decision | None:
        """should_force_cow_break(): COW mapping and FOLL_GET|FOLL_PIN ⇒ OR in FOLL_WRITE."""
        if req.write or not vma.is_cow_mapping:
            return None
        return Decision(
            "fault",
            "should_force_cow_break",
            "should_force_cow_break → faultin_page(FOLL_WRITE)",
            "17839856fd58",
            "a reference-taking GUP on a COW mapping is treated as a write, so COW is broken "
            "now and the caller cannot end up on the wrong side of it later",
            {"cow_mapping": vma.is_cow_mapping, "foll_pin": req.pin},
        )


class BreakCow(BreakAsWrite):
    """Peter Xu, Aug 2020 (never merged): the machine runs FAULT_FLAG_BREAK_COW as an unsharing
    fault: "the page is not marked writable; dirty/soft-dirty not set for a pure read" (semantics
    §3 prose; its table's "else writable" contradicts it, and the prose follows the patch's
    intent, so we follow the prose)."""

    id = "break-cow"
    label = "FAULT_FLAG_BREAK_COW: break COW without a write"
    kernel = "should_force_cow_break → faultin_page(FAULT_FLAG_BREAK_COW)"
    commit = "20200810145701.129228-1-peterx@redhat.com"
    why = (
        "Peter Xu's proposal: the same COW break, but not a write, so no userfault and the copy "
        "stays write-protected"
    )

    def gup_breaks_cow(self, req: GupRequest, vma: Vma) -> Decision | None:
        decision = super().gup_breaks_cow(req, vma)
        if decision is None:
            return None
        return Decision(
            "unshare",
            "FOLL_BREAK_COW",
            "should_force_cow_break → faultin_page(FAULT_FLAG_BREAK_COW)",
            "20200810145701.129228-1-peterx@redhat.com",
            "the GUP breaks COW for a read with FAULT_FLAG_BREAK_COW: a copy if shared, but not "
            "a write, so no userfault is raised and a write-protected PTE stays write-protected",
            decision.inputs,
        )


class WrongSideOk(BreakAsWrite):
    id = "wrong-side-ok"
    label = "break COW unless the caller passes READ_WRONG_SIDE_COW_OK"
    kernel = "should_force_cow_break"
    commit = "CAHk-=wiSF+aKhDOewxQGCGUPyGnA=K7OtAczL5M7aisA5mgFzg"
    why = (
        "Linus' inversion: breaking stays the safe default, and a caller that can live with the "
        "wrong side must say so"
    )

    def gup_breaks_cow(self, req: GupRequest, vma: Vma) -> Decision | None:
        decision = super().gup_breaks_cow(req, vma)
        if decision is None or not req.wrong_side_ok:
            return decision
        return Decision(
            "skip",
            "READ_WRONG_SIDE_COW_OK",
            "should_force_cow_break",
            "CAHk-=wiSF+aKhDOewxQGCGUPyGnA=K7OtAczL5M7aisA5mgFzg",
            "the caller passed READ_WRONG_SIDE_COW_OK: it accepts seeing the wrong side of a "
            "later COW, so no COW is broken for this read",
            dict(decision.inputs) | {"wrong_side_ok": True},
        )


class RoPin(Choice):
    """A R/O FOLL_PIN: must GUP first unshare the page (FAULT_FLAG_UNSHARE)?"""

    knob = "ro_pin"

    def gup_must_unshare(self, req: GupRequest, frame: Frame, vma: Vma) -> Decision | None:
        return None


class NeverUnshare(RoPin):
    id = "never"
    label = "pin whatever the PTE maps"
    kernel = "follow_page_pte"
    commit = ""
    why = "a R/O pin of a shared page may be left behind by the owner's next write (stale)"


class UnshareAnon(RoPin):
    id = "anon"
    label = "unshare possibly-shared anonymous pages"
    kernel = "gup_must_unshare → FAULT_FLAG_UNSHARE"
    commit = "a7f226604170"
    why = (
        "a R/O pin of an anon page not marked exclusive first gets an exclusive page, kept "
        "read-only; FOLL_GET readers are left alone (brings the exclusive bit)"
    )
    needs = frozenset({EXCLUSIVE_BIT})

    def gup_must_unshare(self, req: GupRequest, frame: Frame, vma: Vma) -> Decision | None:
        """gup_must_unshare (a7f226604170): a R/O FOLL_PIN of an anon page that is not marked
        exclusive must unshare first; FOLL_GET readers are left alone."""
        if req.write or not req.pin or frame.kind != "anon" or frame.anon_exclusive:
            return None
        return Decision(
            "unshare",
            "R/O pin of a possibly shared anon page",
            "gup_must_unshare → FAULT_FLAG_UNSHARE",
            "a7f226604170",
            "a read-only pin of an anon page that is not exclusive could end up on the wrong "
            "side of a later COW, so GUP first unshares it",
            counts(frame) | {"foll_pin": True, "foll_write": False},
        )


class UnshareLongterm(UnshareAnon):
    id = "longterm-all"
    label = "also the zero page and page cache for long-term pins"
    kernel = "gup_must_unshare → FAULT_FLAG_UNSHARE"
    commit = "84209e87c696"
    why = (
        "a R/O long-term pin in a private mapping unshares anything that is not an exclusive "
        "anon page, so it keeps seeing the process's writes (brings the exclusive bit)"
    )

    def gup_must_unshare(self, req: GupRequest, frame: Frame, vma: Vma) -> Decision | None:
        """gup_must_unshare (84209e87c696): for FOLL_LONGTERM R/O pins in a COW mapping, every
        page that is not an exclusive anon page must be unshared, zero page and page cache too."""
        decision = super().gup_must_unshare(req, frame, vma)
        if decision is not None:
            return decision
        if (
            req.write
            or not req.pin
            or not req.longterm
            or frame.kind == "anon"
            or not vma.is_cow_mapping
        ):
            return None
        what = "shared zero page" if frame.kind == "zero" else "page-cache page"
        return Decision(
            "unshare",
            "R/O long-term pin of a non-anon page in a COW mapping",
            "gup_must_unshare → FAULT_FLAG_UNSHARE",
            "84209e87c696",
            f"a long-term read-only pin of the {what} in a private mapping would miss the "
            "process's later writes, so GUP first replaces it with an exclusive anonymous copy",
            {"frame_kind": frame.kind, "foll_longterm": True, "cow_mapping": True},
        )


class ForceWrite(Choice):
    """A FOLL_FORCE write (/proc/PID/mem, ptrace) through a read-only PTE of a private mapping:
    what proves COW already happened, so the write may follow the PTE?"""

    knob = "force_write"

    def force_write_proof(self, pte: Pte, frame: Frame, vma: Vma, cow_done: bool) -> Decision:
        raise NotImplementedError

    def after_force_cow(self) -> Decision:
        """Whether GUP drops FOLL_WRITE once a FOLL_FORCE write broke COW: only ≤ 4.8."""
        return NOTHING


class DropFollWrite(ForceWrite):
    id = "drop-foll-write"
    label = "drop FOLL_WRITE after the COW fault"
    kernel = "faultin_page"
    commit = "f33ea7f404e5"
    why = (
        "the retry follows the PTE as a read, whatever it maps after a racing MADV_DONTNEED: "
        "Dirty COW (CVE-2016-5195)"
    )

    def force_write_proof(self, pte: Pte, frame: Frame, vma: Vma, cow_done: bool) -> Decision:
        """f33ea7f404e5 (2005) – 19be0eaffa3a (2016): once faultin_page saw VM_FAULT_WRITE on a
        !VM_WRITE VMA it cleared FOLL_WRITE, so the retry follows whatever the PTE maps."""
        if cow_done:
            return Decision(
                "allow",
                "FOLL_WRITE dropped after COW",
                "faultin_page",
                "f33ea7f404e5",
                "the COW fault happened once, so get_user_pages dropped FOLL_WRITE and now "
                "follows the PTE as a read, whatever page it maps",
                {"foll_write_dropped": True},
            )
        return Decision(
            "fault",
            "write fault first",
            "faultin_page",
            "f33ea7f404e5",
            "the PTE is read-only, so GUP takes a write fault to break COW",
            {"foll_write_dropped": False},
        )

    def after_force_cow(self) -> Decision:
        return Decision(
            "allow",
            "drop FOLL_WRITE after COW",
            "faultin_page",
            "f33ea7f404e5",
            "the COW fault is done, so get_user_pages drops FOLL_WRITE and retries as a read — "
            "it will follow whatever the PTE maps next",
        )


class FollCowDirty(ForceWrite):
    id = "foll-cow-dirty"
    label = "FOLL_COW and a dirty PTE"
    kernel = "can_follow_write_pte"
    commit = "19be0eaffa3a"
    why = "the Dirty COW fix: only a dirty PTE this GUP's own COW produced may be written through"

    def force_write_proof(self, pte: Pte, frame: Frame, vma: Vma, cow_done: bool) -> Decision:
        """4.9–5.19.5 (19be0eaffa3a): only if FOLL_COW is set (this GUP did the COW) and the PTE
        is dirty — a page-cache page mapped by a read fault is clean, so a racing MADV_DONTNEED
        just makes the next round COW again."""
        ok = cow_done and pte.dirty
        return Decision(
            "allow" if ok else "fault",
            "FOLL_COW and PTE dirty" if ok else "no FOLL_COW or clean PTE",
            "can_follow_write_pte",
            "19be0eaffa3a",
            "the PTE is dirty and this GUP made the COW copy itself, so the R/O PTE maps the "
            "private copy"
            if ok
            else "nothing proves the R/O PTE maps a private copy, so GUP takes a write fault "
            "to break COW and tries again",
            {"foll_cow": cow_done, "pte_dirty": pte.dirty},
        )


class ExclusiveProof(ForceWrite):
    id = "anon-exclusive"
    label = "an exclusive anonymous page"
    kernel = "can_follow_write_pte"
    commit = "5535be309971"
    why = (
        "FOLL_COW is gone: only an exclusive anon page needing no soft-dirty or uffd-wp fault "
        "may be written through (brings the exclusive bit)"
    )
    needs = frozenset({EXCLUSIVE_BIT})

    def force_write_proof(self, pte: Pte, frame: Frame, vma: Vma, cow_done: bool) -> Decision:
        """can_follow_write_pte (5535be309971): FOLL_COW is gone; proof is an exclusive anon page
        whose PTE needs no fault for soft-dirty or uffd-wp tracking."""
        needs_fault = (vma.softdirty_tracking and not pte.softdirty) or pte.uffd_wp
        ok = frame.kind == "anon" and frame.anon_exclusive and not needs_fault
        return Decision(
            "allow" if ok else "fault",
            "anon exclusive page" if ok else "not an exclusive anon page",
            "can_follow_write_pte",
            "5535be309971",
            "the R/O PTE maps an exclusive anonymous page, so writing it cannot reach anyone else"
            if ok
            else "the R/O PTE does not map an exclusive anonymous page, so GUP breaks COW with "
            "a write fault first",
            {"anon": frame.kind == "anon", "anon_exclusive": frame.anon_exclusive},
        )


GUP_READ = (NoBreak(), BreakAsWrite(), BreakCow(), WrongSideOk())
RO_PIN = (NeverUnshare(), UnshareAnon(), UnshareLongterm())
FORCE_WRITE = (DropFollWrite(), FollCowDirty(), ExclusiveProof())
