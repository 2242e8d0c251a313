"""5.9 – 5.17: reuse only if page_count == 1; fork copies pinned pages for the child."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from engine.policies.base import KernelVersion
from engine.policies.e5_7 import Classic57


class PageCount59(Classic57):
    """5.9 – 5.17: reuse only if page_count == 1; fork copies pinned pages for the child."""

    id = "5.9"
    label = "page_count reuse"
    kernels = "5.9 – 5.17"
    since = (5, 9)
    until: ClassVar[KernelVersion | None] = (5, 17)
    commits: ClassVar[tuple[str, ...]] = (
        "09854ba94c6a",
        "a308c71bf1e6",
        "70e806e4e645",
        "008cfe4418b3",
        "feb889fb40fa",
    )
    story = (
        "Linus' 'mm: do_wp_page() simplification' (09854ba94c6a): reuse a page only if nobody "
        "else holds any reference (page_count == 1) — copying is always safe. The forced COW of "
        "5.8 was removed (a308c71bf1e6), and after the RDMA regression fork copies a pinned page "
        "for the child at once (70e806e4e645). The price: a process that pinned or vmspliced its "
        "own page copies away from it on its next write, so R/O pins go stale; swap-in still "
        "uses the old mapcount rule. Modelled with 5.11's changes: pinned pages stay out of the "
        "swap cache (feb889fb40fa) and clear_refs leaves them alone ('mm: don't play games with "
        "pinned pages in clear_page_refs'), both first in 5.11: 5.9 and 5.10 themselves still "
        "swapped pinned pages out and write-protected them on clear_refs."
    )
    knobs: ClassVar[Mapping[str, str]] = {
        **Classic57.knobs,
        "wp_reuse": "page-count",
        # copy_present_page (70e806e4e645) has no anonymous check: a maybe-pinned page-cache
        # page of a private mapping is copied for the child too, in mainline through 5.18
        # (the stable branches' PageAnon check is not modelled, DESIGN §3).
        "fork_pinned": "copy",
        "swap_pinned": "refuse",
        "clear_refs": "skip-pinned",
        # 3917c80280c9 (5.8): a THP that cannot be reused is split, only the subpage copied.
        "thp_cow": "split",
    }


POLICY = PageCount59()
