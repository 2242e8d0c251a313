"""The huge-page presets under every policy, derived by hand (never from the engine's output).

Every preset runs one of cow.c's anonymous cases on one backing (DESIGN.md §10): a PMD-mapped
THP (`backing=thp`), a PTE-mapped THP (`backing=thp` then `pte-map`) or a private hugetlb page
(`backing=hugetlb`). Reads and writes touch the first 4 KiB subpage; the rules are those of
kernel-cow-semantics.md §2 ((a) write fault, (d) fork, (f) THP/hugetlb), §2.7 and §8; where the
notes are silent the reason names the kernel function whose behaviour is used.

Notation: X is the huge folio populated by the first write, Y a COW copy. "emc" is X's entire
(PMD) mapcount, "smc" the mapcount of subpage 0, "rc" X's refcount: one per PMD mapping, one per
PTE of a PTE-mapped THP (so a PTE-mapped THP mapped by one process has rc >= 512), +1 per FOLL_GET
or pipe buffer, and +1 per FOLL_PIN (large folios count pins exactly in a separate pincount, not
with the 1024 bias of small pages). The first write maps X writable (do_huge_pmd_anonymous_page /
hugetlb_no_page); from 5.19 X is exclusive, and `pte-map` (split of the PMD) hands the head's
exclusive bit to every subpage.

The rules the reasons cite, by era (E0..E5 as in preset_tables):
- PMD-THP write fault, do_huge_pmd_wp_page: E0..E2 reuse iff reuse_swap_page() counts
  emc + max smc (+ swapcount) <= 1, the hole 09854ba94c6a left open in 5.9; E3 (3bff7e3f1f16)
  reuse iff rc == 1, else split the PMD and copy at PTE level; E4/E5 reuse if exclusive, else the
  E3 rule. A copy before 5.8 is a new THP, from 5.8 (3917c80280c9) a split plus a 4 KiB copy:
  either way the writer ends up on a new page and the reads below do not tell them apart.
- PTE-mapped THP write fault, do_wp_page on a subpage: E0/E1 reuse_swap_page (smc + emc <= 1);
  E2/E3 rc == 1, which a PTE-mapped THP never has, so always copy; E4/E5 reuse if the subpage
  is exclusive, else the rc rule: copy (6.2 does not reuse large folios at PTE level, §2.6, §7).
- hugetlb write fault, hugetlb_cow / hugetlb_wp: every era reuses iff mapcount == 1 and anon
  (hugetlb cannot afford unnecessary copies), and a FOLL_GET reference never unshares, so the
  vmsplice() cases still leak in 6.2: cow.c marks them XFAIL (7dad331be781).
- fork: E0/E1 share (PMD shared whole, hugetlb shared); E2+ a pinned PMD-THP is split and each
  PTE copied for the child (d042035eaf5f, copy_huge_pmd -> copy_present_page 70e806e4e645), a
  pinned hugetlb page is copied for the child (4eae4efa2c29, 5.12, inside the 5.9 era which
  shows mainline 5.17); E4/E5 share a !pinned page clearing its exclusive bit
  (page_try_dup_anon_rmap). Only FOLL_PIN counts: a pipe's FOLL_GET never makes a page
  "maybe pinned".
- GUP: E1 turns a read GUP on a COW mapping into a write (also in follow_trans_huge_pmd and
  follow_hugetlb_page); E4/E5 a R/O FOLL_PIN of a !exclusive anon page, PMD, PTE or hugetlb,
  first unshares (do_huge_pmd_wp_page / do_wp_page / hugetlb_wp with FAULT_FLAG_UNSHARE);
  GUP-fast falls back to the slow path wherever the slow path would fault.
- mprotect(rw): only 6.0+ may map an *exclusive* anon PTE/PMD writable at once, never with
  soft-dirty tracking on (clear-softdirty); hugetlb_change_protection never does, and
  clear_refs does not touch hugetlb entries: a hugetlb page mapped R/O stays R/O.
- needless-copy (DESIGN.md §4): a copy of a page "that had one user and no other reference". For
  a folio: every mapping belongs to one process and rc counts nothing but those mappings. That
  is the copy 6.2 makes of a PTE-mapped THP that one process alone maps, and that later kernels
  avoid (§2.6: COW reuse of PTE-mapped THP exclusively mapped by one MM).
"""

from __future__ import annotations

from tests.engine.preset_tables import (
    ALL,
    E0,
    E1,
    E2,
    E3,
    E4,
    E5,
    E5_BEFORE_6_15,
    E6_15,
    Outcome,
    out,
    table,
)

# ── PMD-mapped THP ("... with THP (2048 kB)") ───────────────────────────────────────────────

_THP: dict[str, dict[str, Outcome]] = {
    "cow-basic-thp": table(
        # All eras: fork() shares X by PMD (emc 2, rc 2; E2+ X is not pinned; E4+ its exclusive
        # bit is cleared). P's write: E0..E2 emc 2 > 1, E3 rc 2, E4/E5 !exclusive and rc 2 =>
        # copy (E0: a new THP; 5.8+: split and copy subpage 0). C keeps X = v1.
        (ALL, out("v1", "v1")),
    ),
    "cow-basic-mprotect-thp": table(
        # As cow-basic-thp: mprotect(rw) upgrades a PMD only from 6.0 and only when exclusive;
        # X lost its bit at fork(). P's write faults and copies.
        (ALL, out("v1", "v1")),
    ),
    "cow-vmsplice-unmap-child-thp": table(
        # E0: C's vmsplice (FOLL_GET read) takes a ref on X, no break; C munmap => emc 1; P's
        # write: reuse_swap_page counts 1 => reuse the PMD => the pipe reads parent-v2 => leak.
        # E2: the same: 09854ba94c6a moved do_wp_page to page_count but left
        # do_huge_pmd_wp_page on reuse_swap_page => the THP variant of CVE-2020-29374 reopens.
        ((*E0, *E2), out("v1", "parent-v2", verdicts={"leak"})),
        # E1: C's vmsplice is forced to a write on C's R/O PMD, emc 2 => copy (split, subpage
        # copy Y for C); the pipe holds Y = v1. P then reuses X (emc 1): nobody else holds X.
        # E3: P's write sees rc 2 (P's PMD + pipe) => split, copy => pipe keeps v1.
        # E4/E5: X !exclusive since fork(), rc 2 => copy.
        ((*E1, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-vmsplice-unmap-child-mprotect-thp": table(
        # The mprotect round trip never maps X writable (pre-6.0 no upgrade; 5.19/6.2 X is not
        # exclusive), so P's write faults and the eras decide as in cow-vmsplice-unmap-child-thp.
        ((*E0, *E2), out("v1", "parent-v2", verdicts={"leak"})),
        ((*E1, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-vmsplice-before-fork-thp": table(
        # E0: the pipe holds X; fork() shares the PMD (emc 2); P munmap => emc 1; C's write:
        # reuse_swap_page 1 => reuse => the parent's pipe reads child-v2 => leak.
        # E1: P's vmsplice finds P's PMD writable (X not shared yet): nothing to break => as E0.
        # E2: fork() shares X (a FOLL_GET is no pin); C's write: mapcount rule as E0 => leak.
        ((*E0, *E1, *E2), out("v1", "child-v2", verdicts={"leak"})),
        # E3: C's write sees rc 2 (C's PMD + pipe) => copy. E4/E5: fork() cleared X's exclusive
        # bit (not pinned); C's write: !exclusive, rc 2 => copy. The pipe keeps v1.
        ((*E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-vmsplice-unmap-parent-thp": table(
        # E0: fork() shares X; P's vmsplice takes a ref without a break; P munmap => emc 1;
        # C's write reuses X => leak. E2: do_huge_pmd_wp_page still counts mappings => leak.
        ((*E0, *E2), out("v1", "child-v2", verdicts={"leak"})),
        # E1: P's vmsplice is forced to a write on P's R/O PMD, emc 2 => P copies (Y); the pipe
        # holds Y = v1; C then reuses X, which nothing else references.
        # E3: C's write sees rc 2 => copy. E4/E5: !exclusive, rc 2 => copy.
        ((*E1, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-iouring-ro-mapping-thp": table(
        # No fork. The fixed buffer pins X (rc 2, pincount 1); mprotect ro + clear-softdirty +
        # mprotect rw leave the PMD R/O (pre-6.0 no upgrade, 5.19/6.2 soft-dirty tracking).
        # E0..E2: do_huge_pmd_wp_page: reuse_swap_page counts emc 1 => reuse => parent-v2 (the
        # mapcount rule never looked at the pin, which here is what the pin needs).
        ((*E0, *E1, *E2), out("parent-v2")),
        # E3 (3bff7e3f1f16): rc 2 != 1 => split the PMD, do_wp_page copies subpage 0 away from
        # the pin => the fixed buffer reads v1, P's own older value => stale. This is the
        # part-1 cover letter's "certainly makes (2) worse for THP". Not needless: X is pinned.
        (E3, out("v1", verdicts={"stale"})),
        # E4/E5: X is exclusive (fresh, never shared) => reuse => parent-v2.
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-iouring-fork-thp": table(
        # E0/E1: fork() shares the pinned PMD (no pin awareness); P's write: emc 2 => copy; the
        # fixed buffer still holds X = v1 while P holds parent-v2 => stale.
        ((*E0, *E1), out("v1", verdicts={"stale"})),
        # E2/E3: copy_huge_pmd sees has_pinned and a pinned X => -EAGAIN, split, and every PTE
        # is copied for the child (d042035eaf5f, copy_present_page); P keeps X writable.
        # E4/E5: page_try_dup_anon_rmap fails on the pinned X => the same split and copy.
        # P writes X in place => the fixed buffer reads parent-v2.
        ((*E2, *E3, *E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-shared-thp": table(
        # E0: the R/O pin takes X as mapped; P's write: emc 2 => copy => the pin reads v1 while
        # P holds parent-v2 => stale.
        (E0, out("v1", verdicts={"stale"})),
        # E1: the pin is forced to a write: P's R/O PMD, emc 2 => split and copy Y for P, the
        # pin holds Y (5.8-break-cow: Y stays R/O and P's write reuses it, smc 1) => parent-v2.
        (E1, out("parent-v2")),
        # E2/E3: no break; pin X; P's write: E2 emc 2, E3 rc 3 => copy => stale.
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        # E4/E5: R/O pin of a R/O, !exclusive PMD => unshare: rc 2 > 1 => split, copy Y mapped
        # R/O and exclusive; pin Y; P's write: Y exclusive => reuse => parent-v2.
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-fast-shared-thp": table(
        # As cow-ro-pin-shared-thp: GUP-fast takes the R/O PMD as it is where no break is due
        # (E0, E2, E3), 5.8's GUP-fast asks for FOLL_WRITE and falls back, 5.19+ gup_huge_pmd
        # bails out on a !exclusive page for a R/O pin.
        (E0, out("v1", verdicts={"stale"})),
        (E1, out("parent-v2")),
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-previously-shared-thp": table(
        # C exits: X is mapped by P's R/O PMD alone (emc 1, rc 1; 5.19+ not exclusive).
        # E0: pin X; P's write: emc 1 => reuse => parent-v2.
        # E1: the forced write (5.8-break-cow: the COW break) reuses X (emc 1); pin X.
        # E2: pin X; P's write: do_huge_pmd_wp_page still counts mappings: emc 1 => reuse.
        ((*E0, *E1, *E2), out("parent-v2")),
        # E3: pin X (rc 2); P's write: rc != 1 => split, copy => the pin keeps v1 => stale.
        (E3, out("v1", verdicts={"stale"})),
        # E4/E5: unshare fault on the PMD: rc 1 => mark X exclusive, no copy, PMD stays R/O;
        # pin X; P's write reuses the exclusive X => parent-v2.
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-fast-previously-shared-thp": table(
        # As cow-ro-pin-previously-shared-thp (GUP-fast falls back where a fault is due).
        ((*E0, *E1, *E2), out("parent-v2")),
        (E3, out("v1", verdicts={"stale"})),
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-exclusive-thp": table(
        # X never shared, PMD R/O after the mprotect/soft-dirty round trip (emc 1, rc 1).
        # E0/E1: pin X (E1's forced write reuses X); P's write: emc 1 => reuse => parent-v2.
        # E2: P's write: mapcount rule, emc 1 => reuse => parent-v2.
        ((*E0, *E1, *E2), out("parent-v2")),
        # E3: pin X (rc 2); P's write: rc != 1 => split, copy => stale.
        (E3, out("v1", verdicts={"stale"})),
        # E4/E5: X exclusive => no unshare, pin X, P's write reuses X => parent-v2.
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-fast-exclusive-thp": table(
        # As cow-ro-pin-exclusive-thp (GUP-fast falls back where a fault is due).
        ((*E0, *E1, *E2), out("parent-v2")),
        (E3, out("v1", verdicts={"stale"})),
        ((*E4, *E5), out("parent-v2")),
    ),
}

# ── PTE-mapped THP ("... with PTE-mapped THP (2048 kB)") ────────────────────────────────────

_PTE_THP: dict[str, dict[str, Outcome]] = {
    "cow-basic-pte-thp": table(
        # All eras: fork() copies P's 512 PTEs, sharing every subpage (smc 2; E4+ each
        # subpage's exclusive bit cleared, X not pinned). P's write to subpage 0: E0/E1 smc 2,
        # E2/E3 rc >= 1024, E4/E5 !exclusive => copy. C keeps v1. X has two users: not needless.
        (ALL, out("v1", "v1")),
    ),
    "cow-basic-mprotect-pte-thp": table(
        # As cow-basic-pte-thp: the subpage is not exclusive, mprotect(rw) cannot upgrade it.
        (ALL, out("v1", "v1")),
    ),
    "cow-vmsplice-unmap-child-pte-thp": table(
        # E0: the pipe holds X; C munmap => smc 1 (emc 0); P's write: reuse_swap_page on the
        # subpage counts 1 => reuse => the pipe reads parent-v2 => leak.
        (E0, out("v1", "parent-v2", verdicts={"leak"})),
        # E1: C's vmsplice is a forced write on C's R/O PTE, smc 2 => C copies subpage 0; the
        # pipe holds the copy. E2/E3: P's write: rc >= 512 != 1 => copy. E4/E5: !exclusive,
        # rc > 1 => copy. The pipe keeps v1. (PTE level was never the THP hole: the hole was
        # do_huge_pmd_wp_page.)
        ((*E1, *E2, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-vmsplice-unmap-child-mprotect-pte-thp": table(
        # As cow-vmsplice-unmap-child-pte-thp: the subpage is not exclusive, no upgrade.
        (E0, out("v1", "parent-v2", verdicts={"leak"})),
        ((*E1, *E2, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-vmsplice-before-fork-pte-thp": table(
        # E0: the pipe holds X; fork() shares every PTE; P munmap => smc 1; C's write reuses
        # subpage 0 => leak. E1: P's PTE is writable at vmsplice time => nothing to break => E0.
        ((*E0, *E1), out("v1", "child-v2", verdicts={"leak"})),
        # E2/E3: C's write: rc > 1 => copy. E4/E5: fork() cleared the bits (a FOLL_GET is no
        # pin); C's write: !exclusive => copy. The pipe keeps v1.
        ((*E2, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-vmsplice-unmap-parent-pte-thp": table(
        # E0: no break; P munmap => smc 1; C's write reuses subpage 0 => leak.
        (E0, out("v1", "child-v2", verdicts={"leak"})),
        # E1: P's vmsplice breaks COW on P's R/O PTE (smc 2) => the pipe holds P's copy.
        # E2..E5: C's write: rc > 1 / !exclusive => copy. The pipe keeps v1.
        ((*E1, *E2, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-iouring-ro-mapping-pte-thp": table(
        # No fork; the fixed buffer pins X; the PTE of subpage 0 ends R/O (as the PMD case).
        # E0/E1: reuse_swap_page on the subpage: smc 1 => reuse => parent-v2.
        ((*E0, *E1), out("parent-v2")),
        # E2/E3: rc >= 512 + 1 != 1 => copy away from the pin => stale (not needless: pinned).
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        # E4/E5: subpage 0 inherited X's exclusive bit at the split => reuse => parent-v2.
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-iouring-fork-pte-thp": table(
        # E0/E1: fork() shares the pinned subpages; P's write copies (smc 2) => stale.
        ((*E0, *E1), out("v1", verdicts={"stale"})),
        # E2..E5: the folio's exact pincount makes every subpage maybe-pinned => fork() copies
        # each PTE's page for the child (copy_present_page / page_try_dup_anon_rmap fails);
        # P keeps X writable and writes it in place => parent-v2.
        ((*E2, *E3, *E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-shared-pte-thp": table(
        # E0: pin X as mapped; P's write: smc 2 => copy => stale.
        (E0, out("v1", verdicts={"stale"})),
        # E1: the pin's forced write copies subpage 0 for P (smc 2) and pins the copy.
        (E1, out("parent-v2")),
        # E2/E3: pin X; P's write: rc > 1 => copy => stale.
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        # E4/E5: R/O pin of a !exclusive subpage => unshare: rc > 1 => copy Y R/O exclusive
        # (X is shared with the live child: not needless); pin Y; P's write reuses Y.
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-fast-shared-pte-thp": table(
        # As cow-ro-pin-shared-pte-thp (GUP-fast falls back where a fault is due).
        (E0, out("v1", verdicts={"stale"})),
        (E1, out("parent-v2")),
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-previously-shared-pte-thp": table(
        # C exits: P alone maps X by 512 R/O PTEs (smc 1; 5.19+ no subpage exclusive).
        # E0: pin X; P's write: smc 1 => reuse. E1: the forced write reuses (smc 1), pins X.
        ((*E0, *E1), out("parent-v2")),
        # E2/E3: pin X; P's write: rc >= 513 => copy away from the pin => stale.
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        # E4/E5: R/O pin of a !exclusive subpage => unshare: do_wp_page's rc test sees 512
        # (P's own PTEs) => copy Y, R/O exclusive; pin Y; P's write reuses Y => parent-v2.
        # The unshare copied a folio that P alone maps with no other reference yet (no pin,
        # no pipe, no swap cache) => needless-copy: the copy later kernels avoid (§2.6).
        ((*E4, *E5_BEFORE_6_15), out("parent-v2", verdicts={"needless-copy"})),
        # 6.15 (1da190f4d0a6, __wp_can_reuse_large_anon_folio): the unshare fault finds the
        # folio mapped by P's MM alone with mapcount 512 == refcount 512 => marks subpage 0
        # exclusive without a copy; pin X; P's write reuses the exclusive subpage => parent-v2.
        (E6_15, out("parent-v2")),
    ),
    "cow-ro-pin-fast-previously-shared-pte-thp": table(
        # As cow-ro-pin-previously-shared-pte-thp: 5.19+ GUP-fast bails out on the
        # !exclusive subpage and the slow path unshares (with the same needless copy, which
        # 6.15's unshare avoids as in the slow-path test).
        ((*E0, *E1), out("parent-v2")),
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        ((*E4, *E5_BEFORE_6_15), out("parent-v2", verdicts={"needless-copy"})),
        (E6_15, out("parent-v2")),
    ),
    "cow-ro-pin-exclusive-pte-thp": table(
        # X never shared; subpage 0's PTE R/O after the mprotect/soft-dirty round trip.
        # E0/E1: smc 1 => reuse (E1's forced write reuses at pin time) => parent-v2.
        ((*E0, *E1), out("parent-v2")),
        # E2/E3: pin X; P's write: rc != 1 => copy => stale (not needless: pinned).
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        # E4/E5: subpage 0 exclusive => no unshare, pin X, P's write reuses => parent-v2.
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-fast-exclusive-pte-thp": table(
        ((*E0, *E1), out("parent-v2")),
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        ((*E4, *E5), out("parent-v2")),
    ),
}

# ── hugetlb ("... with hugetlb (2048 kB)") ──────────────────────────────────────────────────

_HUGETLB: dict[str, dict[str, Outcome]] = {
    "cow-basic-hugetlb": table(
        # All eras: fork() shares X (mapcount 2; not pinned). P's write: hugetlb_wp sees
        # mapcount 2 => copy. C keeps v1.
        (ALL, out("v1", "v1")),
    ),
    "cow-basic-mprotect-hugetlb": table(
        # As cow-basic-hugetlb: hugetlb_change_protection never maps a page writable on
        # mprotect(rw); the write faults and copies.
        (ALL, out("v1", "v1")),
    ),
    "cow-vmsplice-unmap-child-hugetlb": table(
        # E1: follow_hugetlb_page forces the read GUP to a write on C's R/O entry, mapcount 2
        # => C copies; the pipe holds C's copy = v1; P's write then reuses X.
        (E1, out("v1", "v1")),
        # Every other era: no break (FOLL_GET never unshares, E4+ included); C munmap =>
        # mapcount 1; P's write: hugetlb_wp reuses (mapcount 1, anon) the page the pipe holds
        # => the pipe reads parent-v2 => leak. cow.c: XFAIL on today's kernels.
        ((*E0, *E2, *E3, *E4, *E5), out("v1", "parent-v2", verdicts={"leak"})),
    ),
    "cow-vmsplice-unmap-child-mprotect-hugetlb": table(
        # As cow-vmsplice-unmap-child-hugetlb: the mprotect round trip leaves the entry R/O.
        (E1, out("v1", "v1")),
        ((*E0, *E2, *E3, *E4, *E5), out("v1", "parent-v2", verdicts={"leak"})),
    ),
    "cow-vmsplice-before-fork-hugetlb": table(
        # All eras: P's vmsplice finds P's entry writable (5.8: nothing to break); fork() shares
        # X (a FOLL_GET is no pin, so 4eae4efa2c29's early copy does not apply); P munmap =>
        # mapcount 1; C's write reuses X => the parent's pipe reads child-v2 => leak (XFAIL).
        (ALL, out("v1", "child-v2", verdicts={"leak"})),
    ),
    "cow-vmsplice-unmap-parent-hugetlb": table(
        # E1: P's vmsplice breaks COW on P's R/O entry (mapcount 2) => the pipe holds P's copy.
        (E1, out("v1", "v1")),
        # Every other era: the pipe holds X; P munmap => mapcount 1; C's write reuses => leak.
        ((*E0, *E2, *E3, *E4, *E5), out("v1", "child-v2", verdicts={"leak"})),
    ),
    "cow-iouring-ro-mapping-hugetlb": table(
        # All eras: the pinned X is mapped R/O by P alone (mapcount 1); hugetlb_wp decides by
        # mapcount, never by the pin's reference => reuse => parent-v2.
        (ALL, out("parent-v2")),
    ),
    "cow-iouring-fork-hugetlb": table(
        # E0/E1: fork() shares the pinned X; P's write: mapcount 2 => copy => stale.
        ((*E0, *E1), out("v1", verdicts={"stale"})),
        # E2..E5: copy_hugetlb_page_range copies a pinned page for the child (4eae4efa2c29,
        # page_needs_cow_for_dma 97a7e4733b9b; 5.19 page_try_dup_anon_rmap) => P writes X.
        ((*E2, *E3, *E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-shared-hugetlb": table(
        # E0: pin X; P's write: mapcount 2 => copy => stale.
        (E0, out("v1", verdicts={"stale"})),
        # E1: follow_hugetlb_page forces a write: mapcount 2 => P copies and pins the copy.
        (E1, out("parent-v2")),
        # E2/E3: pin X without a break; P's write copies => stale.
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        # E4/E5: R/O pin of a !exclusive hugetlb page => hugetlb_wp(unshare): mapcount 2 =>
        # copy Y R/O exclusive; pin Y; P's write: Y mapcount 1 => reuse => parent-v2.
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-fast-shared-hugetlb": table(
        # As cow-ro-pin-shared-hugetlb (GUP-fast falls back where a fault is due).
        (E0, out("v1", verdicts={"stale"})),
        (E1, out("parent-v2")),
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-previously-shared-hugetlb": table(
        # C exits: mapcount 1. E0/E2/E3: pin X, P's write: mapcount 1 => reuse. E1: the forced
        # write reuses at pin time. E4/E5: unshare: mapcount 1 => mark exclusive, no copy.
        # Every era => parent-v2 (hugetlb never looked at page_count).
        (ALL, out("parent-v2")),
    ),
    "cow-ro-pin-fast-previously-shared-hugetlb": table(
        (ALL, out("parent-v2")),
    ),
    "cow-ro-pin-exclusive-hugetlb": table(
        # X never shared (mapcount 1, E4+ exclusive), entry R/O after mprotect: every era
        # reuses on P's write (E1 at pin time) => parent-v2.
        (ALL, out("parent-v2")),
    ),
    "cow-ro-pin-fast-exclusive-hugetlb": table(
        (ALL, out("parent-v2")),
    ),
}

HUGE_EXPECTED: dict[str, dict[str, Outcome]] = {**_THP, **_PTE_THP, **_HUGETLB}
