"""5.19 – 6.1: PageAnonExclusive, and FAULT_FLAG_UNSHARE for R/O pins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from engine.policies.base import KernelVersion
from engine.policies.e5_18 import PageCount518


class Exclusive519(PageCount518):
    """5.19 – 6.1: PageAnonExclusive, and FAULT_FLAG_UNSHARE for R/O pins."""

    id = "5.19"
    label = "PageAnonExclusive + FAULT_FLAG_UNSHARE"
    kernels = "5.19 – 6.1"
    since = (5, 19)
    until: ClassVar[KernelVersion | None] = (6, 1)
    commits: ClassVar[tuple[str, ...]] = (
        "6c287605fd56",
        "78fbe906cc90",
        "c89357e27f20",
        "a7f226604170",
        "1493a1913e34",
        "5535be309971",
        "64fe24a3e05e",
    )
    story = (
        "COW fixes part 2: every mapped anonymous page carries an exclusive bit. An exclusive "
        "page is always reused on a write fault, pins or not; fork refuses to share a pinned "
        "exclusive page and copies it for the child instead. A R/O pin of a possibly shared "
        "page first triggers FAULT_FLAG_UNSHARE, which gives the pinner an exclusive page while "
        "keeping the PTE read-only — Peter Xu's 2020 idea, scoped to FOLL_PIN. vmsplice still "
        "takes plain FOLL_GET references, which are left as the 'wrong side OK' class. Modelled "
        "with 6.0's FOLL_FORCE fix (5535be309971) and mprotect upgrade of dirty exclusive pages "
        "(64fe24a3e05e): both first in 6.0, so 5.19 itself still had FOLL_COW and left "
        "mprotect()ed pages read-only."
    )
    knobs: ClassVar[Mapping[str, str]] = {
        **PageCount518.knobs,
        "wp_reuse": "anon-exclusive",
        "ro_pin": "anon",
        "fork_pinned": "copy-if-exclusive",
        "force_write": "anon-exclusive",
        "swapin_reuse": "anon-exclusive",
        "swap_pinned": "refuse-unmap",
        "mprotect_upgrade": "dirty-exclusive",
        "uffd_wp_file": "file-too",
        # mprotect_uffd_wp stays "drop": 51d3d5eb74ff was merged for 6.2 and Cc stable (5.19+),
        # but this era shows mainline 6.1, released without it (DESIGN §3: stable backports are
        # not modelled), so mprotect(PROT_WRITE) of a shared uffd-wp mapping drops the
        # protection; eras before 5.19 cannot write-protect a shared file mapping at all.
        # swapin_zram stays "skip-cache"; a page that skipped the swap cache is mapped exclusive
        # (1493a1913e34), which `Policy` decides from the exclusive bit this era keeps.
    }


POLICY = Exclusive519()
