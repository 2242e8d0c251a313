"""Proposal (Linus, Aug 2020, never merged): READ_WRONG_SIDE_COW_OK on top of 5.8."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from engine.policies.base import KernelVersion
from engine.policies.e5_8 import EnforcedCow58


class WrongSideOkProposal(EnforcedCow58):
    """Linus' inversion (10 Aug 2020, never merged): breaking COW stays the default and callers
    that can live with the wrong side opt out with READ_WRONG_SIDE_COW_OK."""

    id = "5.8-wrong-side-ok"
    label = "Proposal: READ_WRONG_SIDE_COW_OK"
    kernels = "proposal (Aug 2020), never merged"
    commits: ClassVar[tuple[str, ...]] = ("17839856fd58",)
    merged = False
    since = (5, 8)
    until: ClassVar[KernelVersion | None] = (5, 8)
    story = (
        "Linus' answer to Peter Xu (CAHk-=wiSF+aKhDOewxQGCGUPyGnA=K7OtAczL5M7aisA5mgFzg): keep "
        "breaking COW as the safe default and make the special case the one that must be "
        "justified — a caller that can tolerate getting 'the wrong side' of a COW says so with "
        "FOLL_READ_WRONG_SIDE_COW_OK, and only that caller skips the COW break. In cowlab, "
        "`wrong-side-ok` on a get or pin is that flag; the flag says *why* the COW is skipped."
    )
    knobs: ClassVar[Mapping[str, str]] = {
        **EnforcedCow58.knobs,
        "gup_read": "wrong-side-ok",
    }


POLICY = WrongSideOkProposal()
