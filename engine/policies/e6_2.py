"""6.2 – today: R/O long-term pins also unshare the zero page and page-cache pages."""

from __future__ import annotations

from typing import ClassVar

from engine.policies.base import Decision, GupRequest, KernelVersion
from engine.policies.e5_19 import Exclusive519
from engine.state import Frame, Pte, Vma


class LongtermUnshare62(Exclusive519):
    """6.2 – today: R/O long-term pins also unshare the zero page and page-cache pages."""

    id = "6.2"
    label = "Reliable R/O long-term pins"
    kernels = "6.2 – today"
    since = (6, 2)
    until: ClassVar[KernelVersion | None] = None
    commits: ClassVar[tuple[str, ...]] = Exclusive519.commits + ("8d6a0ac09a16", "84209e87c696")
    story = (
        "'mm/gup: reliable R/O long-term pinning in COW mappings' (84209e87c696) extends "
        "FAULT_FLAG_UNSHARE to anything in a private mapping: a R/O FOLL_LONGTERM pin of the "
        "shared zero page or of a file's page-cache page first gets an exclusive anonymous copy, "
        "so the pin keeps seeing what the process writes. Drivers stop abusing FOLL_FORCE to get "
        "the same effect, and mprotect may map clean exclusive pages writable too."
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

    def mprotect_makes_writable(self, pte: Pte, frame: Frame, vma: Vma) -> Decision:
        """6.2 (Nadav Amit, 'mm/mprotect: allow clean exclusive anon pages to be writable')."""
        return self._mprotect_upgrade(pte, frame, vma, need_dirty=False, commit="64fe24a3e05e")


POLICY = LongtermUnshare62()
