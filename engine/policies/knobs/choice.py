"""What a knob choice is: one kernel's answer to one design question, with its provenance.

A `Choice` subclass per knob declares the decision methods that knob governs (a write-fault
choice answers `wp_reuse` and the swap-cache questions around it, a GUP choice answers
`gup_breaks_cow`, …); each concrete choice is one class holding that rule once, with the kernel
function, the commit and one line of why. Eras and custom points both get their rules from here.
"""

from __future__ import annotations

from typing import ClassVar

# State a choice needs the machine to keep. An era that never had the state does not keep it;
# a point whose choices need it brings it along (the exclusive bit with every 5.19 rule).
EXCLUSIVE_BIT = "exclusive_bit"
HAS_PINNED = "has_pinned"


class Choice:
    """One named way to answer a knob's question.

    ``needs`` names the state (`EXCLUSIVE_BIT`, `HAS_PINNED`) the rule reads, so a point that
    picks it keeps that state even when its base era did not.
    """

    knob: ClassVar[str]
    id: ClassVar[str]
    label: ClassVar[str]
    kernel: ClassVar[str]
    commit: ClassVar[str]
    why: ClassVar[str]
    needs: ClassVar[frozenset[str]] = frozenset()

    def __repr__(self) -> str:
        return f"{self.knob}={self.id}"
