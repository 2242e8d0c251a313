"""Every kernel commit the engine cites, with the first mainline release that contained it.

A test (tests/engine/test_commits.py) finds every 12-hex-digit commit id in the engine's source
and checks it is here, and that an era citing a commit released after the era's first kernel
says so in its story. Each release was read from the kernel's own history, not inferred from
the era that cites it: ``source`` says where — a section of shared/kernel-cow-semantics.md, or
the mm tree's revision lists, stable changelogs and ``Fixes:``/``Cc: stable # vX+`` trailers of
the patches that name the commit (the kernel mailing-list archive).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

KernelRelease = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Commit:
    id: str  # the first 12 hex digits, as the engine cites it
    subject: str
    release: KernelRelease  # first mainline release that contains it
    source: str  # where that release was read


_SEM = "kernel-cow-semantics.md"


def _table(*commits: Commit) -> Mapping[str, Commit]:
    table = {c.id: c for c in commits}
    assert len(table) == len(commits), "a commit listed twice"
    return MappingProxyType(table)


COMMITS: Mapping[str, Commit] = _table(
    Commit(
        "c475a8ab625d",
        "can_share_swap_page: use page_mapcount",
        (2, 6, 13),
        "Hugh Dickins' list '2.6.13 21jun05 c475a8ab625d' (linux-mm, 2020)",
    ),
    Commit(
        "f33ea7f404e5",
        "fix get_user_pages bug",
        (2, 6, 13),
        "authored 2005-08-03, between 2.6.13-rc5 and 2.6.13; 19be0eaffa3a's message",
    ),
    Commit(
        "19be0eaffa3a",
        "mm: remove gup_flags FOLL_WRITE games from __get_user_pages()",
        (4, 9),
        f"{_SEM} (Dirty COW, committed 18 Oct 2016 for 4.9-rc1)",
    ),
    Commit(
        "ba3c4ce6def4",
        "mm, THP, swap: make reuse_swap_page() works for THP swapped out",
        (4, 14),
        "'only added in ba3c4ce6def4 ... in 4.14' (stable backport review)",
    ),
    Commit(
        "0bcac06f27d7",
        "mm, swap: skip swapcache for swapin of synchronous device",
        (4, 15),
        "'0bcac06f27d75285 ... was added in v4.15-rc1' (linux-mm)",
    ),
    Commit(
        "29ec90660d68",
        "userfaultfd: shmem/hugetlbfs: only allow to register VM_MAYWRITE vmas",
        (4, 20),
        "CVE-2018-18397: mainline 30 Nov 2018 (4.20-rc5), stable 4.19.7/4.14.87",
    ),
    Commit(
        "1a4e58cce84e",
        "mm: introduce MADV_PAGEOUT",
        (5, 4),
        "man-pages: MADV_PAGEOUT 'since Linux 5.4'; committed 25 Sep 2019",
    ),
    Commit("3faa52c03f44", "mm/gup: track FOLL_PIN pages", (5, 7), f"{_SEM} §1 (refcounts)"),
    Commit(
        "f45ec5ff16a7",
        "userfaultfd: wp: support swap and page migration",
        (5, 7),
        "'Cc: stable@vger.kernel.org # v5.7+' on the fixes naming it (Peter Xu)",
    ),
    Commit(
        "17839856fd58",
        "gup: document and work around 'COW can break either way' issue",
        (5, 8),
        f"{_SEM} §2 (E1: 5.8, 5.9-rc1..rc3)",
    ),
    Commit(
        "3917c80280c9",
        "thp: change CoW semantics for anon-THP",
        (5, 8),
        "'Fixes: 3917c80280c9 ... Cc: stable@vger.kernel.org # v5.8+'",
    ),
    Commit(
        "09854ba94c6a",
        "mm: do_wp_page() simplification",
        (5, 9),
        f"{_SEM} §2 ('all in 5.9, pulled for 5.9-rc4')",
    ),
    Commit(
        "a308c71bf1e6",
        "mm/gup: Remove enfornced COW mechanism",
        (5, 9),
        f"{_SEM} §2 (the 5.9-rc4 series with 09854ba94c6a)",
    ),
    Commit(
        "008cfe4418b3",
        "mm: Introduce mm_struct.has_pinned",
        (5, 9),
        f"{_SEM} §1 ('has_pinned (5.9, 008cfe4418b3)')",
    ),
    Commit(
        "70e806e4e645",
        "mm: Do early cow for pinned pages during fork() for ptes",
        (5, 9),
        f"{_SEM} §2 (fork series for 5.9-rc7)",
    ),
    Commit(
        "d042035eaf5f",
        "mm/thp: Split huge pmds/puds if they're pinned when fork()",
        (5, 9),
        f"{_SEM} §2 (fork series for 5.9-rc7)",
    ),
    Commit(
        "feb889fb40fa",
        "mm: don't put pinned pages into the swap cache",
        (5, 11),
        f"{_SEM} ('5.11-rc4: feb889fb40fa')",
    ),
    Commit(
        "97a7e4733b9b",
        "mm: introduce page_needs_cow_for_dma()",
        (5, 12),
        f"{_SEM} (with 4eae4efa2c29, 5.12)",
    ),
    Commit(
        "4eae4efa2c29",
        "hugetlb: do early cow when page pinned on src mm",
        (5, 12),
        f"{_SEM} ('hugetlb: only from 5.12')",
    ),
    Commit(
        "53a05ad9f21d",
        "mm: optimize do_wp_page() for exclusive pages in the swapcache",
        (5, 18),
        f"{_SEM} (COW fixes part 1, 5.18)",
    ),
    Commit(
        "d4c470970d45",
        "mm: optimize do_wp_page() for fresh pages in local LRU pagevecs",
        (5, 18),
        f"{_SEM} (COW fixes part 1, 5.18)",
    ),
    Commit(
        "c145e0b47c77",
        "mm: streamline COW logic in do_swap_page()",
        (5, 18),
        f"{_SEM} (COW fixes part 1, 5.18)",
    ),
    Commit(
        "3bff7e3f1f16",
        "mm/huge_memory: streamline COW logic in do_huge_pmd_wp_page()",
        (5, 18),
        f"{_SEM} (COW fixes part 1, 5.18)",
    ),
    Commit(
        "03104c2c5db8",
        "mm/swapfile: remove stale reuse_swap_page()",
        (5, 18),
        f"{_SEM} (COW fixes part 1, 5.18)",
    ),
    Commit(
        "90e7e7f5ef3f",
        "mm: enable MADV_DONTNEED for hugetlb mappings",
        (5, 18),
        "committed 24 Mar 2022 in the 5.18 merge window (LTP review: 'implemented since')",
    ),
    Commit(
        "6c287605fd56",
        "mm: remember exclusively mapped anonymous pages with PG_anon_exclusive",
        (5, 19),
        f"{_SEM} (COW fixes part 2, 5.19)",
    ),
    Commit(
        "78fbe906cc90",
        "mm/page-flags: reuse PG_mappedtodisk as PG_anon_exclusive",
        (5, 19),
        f"{_SEM} (COW fixes part 2, 5.19)",
    ),
    Commit(
        "c89357e27f20",
        "mm: support GUP-triggered unsharing of anonymous pages",
        (5, 19),
        f"{_SEM} (COW fixes part 2, 5.19)",
    ),
    Commit(
        "a7f226604170",
        "mm/gup: trigger FAULT_FLAG_UNSHARE when R/O-pinning",
        (5, 19),
        f"{_SEM} (COW fixes part 2, 5.19)",
    ),
    Commit(
        "b6a2619c60b4",
        "mm/gup: sanity-check with CONFIG_DEBUG_VM that anonymous pages are "
        "exclusive when (un)pinning",
        (5, 19),
        f"{_SEM} (COW fixes part 2, 5.19)",
    ),
    Commit(
        "fb3d824d1a46",
        "mm/rmap: split page_dup_rmap() into page_dup_file_rmap() and page_try_dup_anon_rmap()",
        (5, 19),
        f"{_SEM} (COW fixes part 2, 5.19)",
    ),
    Commit(
        "1493a1913e34",
        "mm/swap: remember PG_anon_exclusive via a swp pte bit",
        (5, 19),
        f"{_SEM} (COW fixes part 3, 5.19)",
    ),
    Commit(
        "5535be309971",
        "mm/gup: fix FOLL_FORCE COW security issue and remove FOLL_COW",
        (6, 0),
        f"{_SEM} ('FOLL_FORCE fix (6.0, backported 5.19.6)')",
    ),
    Commit(
        "64fe24a3e05e",
        "mm/mprotect: try avoiding write faults for exclusive anonymous pages "
        "when changing protection",
        (6, 0),
        f"{_SEM} ('exclusive dirty anon pages (6.0)')",
    ),
    Commit(
        "76aefad628aa",
        "mm/mprotect: fix soft-dirty check in can_change_pte_writable()",
        (6, 0),
        "committed 25 Jul 2022, in the 6.0 merge window with the fix it corrects (64fe24a3e05e)",
    ),
    Commit(
        "69c66add5663",
        "selftests/vm: anon_cow: test COW handling of anonymous memory",
        (6, 1),
        f"{_SEM} (selftests 'merged 6.1')",
    ),
    Commit(
        "7dad331be781",
        "selftests/vm: anon_cow: hugetlb tests",
        (6, 1),
        f"{_SEM} (selftests 'merged 6.1')",
    ),
    Commit(
        "84209e87c696",
        "mm/gup: reliable R/O long-term pinning in COW mappings",
        (6, 2),
        f"{_SEM} (6.2 series)",
    ),
    Commit(
        "8d6a0ac09a16",
        "mm: extend FAULT_FLAG_UNSHARE support to anything in a COW mapping",
        (6, 2),
        f"{_SEM} (6.2 series)",
    ),
    Commit(
        "d84887739d5c",
        "mm/mprotect: allow clean exclusive anon pages to be writable",
        (6, 2),
        "mm-stable revision list of Dec 2022 (with 84209e87c696 and c27f479ef542, for 6.2)",
    ),
    Commit(
        "c27f479ef542",
        "mm/huge_memory: try avoiding write faults when changing PMD protection",
        (6, 2),
        "mm-stable revision list of Dec 2022 (with d84887739d5c)",
    ),
    Commit(
        "51d3d5eb74ff",
        "mm/userfaultfd: enable writenotify while userfaultfd-wp is enabled for a VMA",
        (6, 2),
        "mm-hotfixes revision list, Dec 2022; stable 'commit ... upstream'",
    ),
    Commit(
        "1da190f4d0a6",
        "mm: Copy-on-Write (COW) reuse support for PTE-mapped THP",
        (6, 15),
        "mm-stable revision list with 6af8cb80d3a9 (MM owner tracking), first in v6.15-rc1",
    ),
    Commit(
        "bd4c82c22c36",
        "mm, THP, swap: delay splitting THP after swapped out",
        (4, 14),
        "Huang Ying's THP swap series of Jul 2017 (-mm -v3, with ba3c4ce6def4); later fixes "
        "carry 'Fixes: bd4c82c22c36' with 'Cc: stable # 4.14'",
    ),
    Commit(
        "9c276cc65a58",
        "mm: introduce MADV_COLD",
        (5, 4),
        "perf's uapi sync names it with 1a4e58cce84e (MADV_PAGEOUT) for 5.4; later 'Fixes:' "
        "trailers",
    ),
    Commit(
        "60dfaad65aa9",
        "mm/hugetlb: allow uffd wr-protect none ptes",
        (5, 19),
        "Peter Xu's uffd-wp shmem/hugetlbfs series (v7, Mar 2022) in the mm revision list for "
        "5.19; fed15f1345dc says 'Cc: linux-stable # 5.19+, Fixes: 60dfaad65aa9'",
    ),
    Commit(
        "c64e912c865a",
        "mm/hugetlb: handle pte markers in page faults",
        (5, 19),
        "the same revision list as 60dfaad65aa9 (uffd-wp shmem/hugetlbfs series, 5.19)",
    ),
    Commit(
        "fed15f1345dc",
        "mm/hugetlb: pre-allocate pgtable pages for uffd wr-protects",
        (6, 2),
        "mm-hotfixes revision list of Jan 2023 (6.2-rc); stable '[PATCH 6.1 078/193]' backport",
    ),
    Commit(
        "1ced09e0331f",
        "mm: allocate THP on hugezeropage wp-fault",
        (6, 13),
        "torvalds/linux post-receive of 23 Nov 2024 (the 6.13 merge window); later 'Fixes: "
        "1ced09e0331f' trailers",
    ),
)


def release_text(release: KernelRelease) -> str:
    return ".".join(str(n) for n in release)
