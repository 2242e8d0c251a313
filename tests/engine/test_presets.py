"""Every preset under every policy: what each read observes and which verdicts fire.

The expectations below are derived by hand from kernel-cow-semantics.md (§2 era rules, §3 the
two proposals, §5 Dirty COW, §8 operation rules), never by running the engine. Each table row
names the eras it covers and says why they behave the same.

Notation in the reasons: X is the page populated before the test, Y/Z are COW copies; "mc" is
mapcount, "rc" refcount (a FOLL_PIN adds 1024, a FOLL_GET or pipe buffer 1, the swap cache 1).
Era groups E0..E5: see tests/engine/preset_tables.py.
Verdicts (DESIGN.md §4 as the engine defines them): a read's ideal value comes from a logical
model in which fork() copies every page; a reference follows its owner's logical page (its last
value once the owner unmapped it), and a device write through a R/W reference writes the owner's
logical page. observed != ideal is a `leak` when the observed value was never in the reader's
own history (another process wrote it after the split), otherwise `stale`.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from engine.commands import Read, RefRead
from engine.presets import PRESETS, Preset
from engine.syntax import parse
from engine.trace import replay
from tests.engine.huge_preset_expectations import HUGE_EXPECTED
from tests.engine.preset_tables import (
    ALL,
    E0,
    E1,
    E2,
    E3,
    E4,
    E5,
    POLICIES,
    Outcome,
    out,
    table,
)

BASE_EXPECTED: dict[str, dict[str, Outcome]] = {
    "cow-basic": table(
        # All eras: after fork() X is mapped by P and C (mc 2, rc 2; 5.19+: exclusive cleared
        # because X is not pinned). P's write fault: E0/E1 mc 2 > 1, E2/E3 rc 2 != 1, E4/E5 not
        # exclusive and rc 2 => copy. C keeps X = v1. No copy of a single-user page.
        (ALL, out("v1", "v1")),
    ),
    "cow-basic-mprotect": table(
        # All eras: as cow-basic. mprotect(rw) may map a page writable without a fault only from
        # 6.0 and only if it is exclusive; X was shared at fork() and is not => the write faults
        # and copies (reasons as cow-basic).
        (ALL, out("v1", "v1")),
    ),
    "dirty-cow": table(
        # 4.8: FOLL_FORCE write: do_cow_fault makes a R/O anon copy, "COW done" = FOLL_WRITE
        # dropped; the racing MADV_DONTNEED zaps the copy; the retried lookup is a read and maps
        # the page-cache page; the write lands in it => file-corrupted. The attacker's PTE maps
        # the page-cache page: reads pwned (= its ideal, its own forced write). The reader's
        # shared mapping reads pwned: never in its history, written by the attacker => leak.
        (("4.8",), out("root-data", "pwned", "pwned", verdicts={"file-corrupted", "leak"})),
        # 5.7 .. 6.2: FOLL_WRITE is kept; a R/O PTE may only be written with proof that COW
        # happened (FOLL_COW && PTE dirty; 5.19+ anon && exclusive). After the zap the retry
        # write-faults again and makes a fresh private copy, the write lands there: the attacker
        # reads pwned, the file stays root-data. 5.8 proposals: forcewrite is a write GUP, no
        # difference.
        (("5.7", *E1, *E2, *E3, *E4, *E5), out("root-data", "pwned", "root-data")),
    ),
    "cve-2020-29374": table(
        # E0: vmsplice = R/O FOLL_GET, no COW break: the pipe holds X. C munmap => X mc 1.
        # P's write: mc 1 (no swap) => reuse X => pipe reads P's secret, written by P after the
        # split and never C's => leak.
        (E0, out("THIS-IS-SECRET", verdicts={"leak"})),
        # E1 (5.8, break-cow, wrong-side-ok: vmsplice cannot pass the opt-out): the read GUP on
        # the COW mapping breaks COW at GUP time: C's PTE is R/O, X mc 2 => C copies to Y, the
        # pipe holds Y (BORING-DATA). C munmap frees nothing (pipe). P's write: X mc 1 => reuse;
        # the pipe still reads Y.
        (E1, out("BORING-DATA")),
        # E2/E3: no COW break; pipe holds X; after C's munmap X has mc 1 but rc 2 (pipe) =>
        # P copies to Z; the pipe keeps BORING-DATA. Not a needless copy (X keeps the pipe's ref).
        # E4/E5: X lost its exclusive bit at fork(); FOLL_GET never unshares; P's write: not
        # exclusive, rc 2 => copy, same result.
        ((*E2, *E3, *E4, *E5), out("BORING-DATA")),
    ),
    "cow-vmsplice-unmap-child": table(
        # Same mechanics as cve-2020-29374 plus C's backup read (v1 in every era).
        # E0: pipe holds X, C unmaps, P's write sees mc 1 => reuse => pipe reads parent-v2 => leak.
        (E0, out("v1", "parent-v2", verdicts={"leak"})),
        # E1: the GUP breaks COW in C (X mc 2 => copy Y for C); the pipe holds Y = v1.
        # E2..E5: no break, but P's write sees rc 2 (pipe) / not exclusive => copy; pipe keeps v1.
        ((*E1, *E2, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-vmsplice-unmap-child-mprotect": table(
        # The mprotect round trip never maps X writable: pre-6.0 mprotect(rw) never upgrades a
        # PTE; 5.19/6.2 only upgrade exclusive pages and X lost its bit at fork(). So P's write
        # faults and the eras decide as in cow-vmsplice-unmap-child.
        # E0: mc 1 after C's munmap => reuse => leak.
        (E0, out("v1", "parent-v2", verdicts={"leak"})),
        # E1: C copied at vmsplice time. E2..E5: rc 2 / not exclusive => P copies.
        ((*E1, *E2, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-vmsplice-unmap-child-swap": table(
        # fork() duplicates P's swap entry (swapcount 2). C's read swaps X in R/O: X in the swap
        # cache, C maps it (mc 1), P's swap entry remains (swapcount 1).
        # E0 and E2 (5.9): no COW break, the pipe holds X; C munmap => X mc 0. P's write is a
        # swap-in write fault, still decided by reuse_swap_page in E0..E2: mapcount 0 +
        # swapcount 1 <= 1 => reuse X (dropped from the swap cache) => pipe reads parent-v2
        # => leak. This is the swap hole 5.9 left open (fixed by c145e0b47c77 in 5.18).
        ((*E0, *E2), out("v1", "parent-v2", verdicts={"leak"})),
        # E1: C's vmsplice is forced to a write: C's PTE is R/O and reuse_swap_page counts
        # mc 1 + swapcount 1 (P) = 2 => C copies to Y, the pipe holds Y = v1. P's swap-in write
        # then reuses X (0 + 1), which nothing else references. No leak.
        # E3: P's swap-in write maps X writable only if rc == 1 after freeing the swap cache;
        # the pipe makes rc 2 => R/O, then do_wp_page copies => pipe keeps v1.
        # E4/E5: P's swap entry lost its exclusive bit at fork(), C's copy never had one; the
        # pipe makes rc 2 => P copies.
        ((*E1, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-vmsplice-before-fork": table(
        # E0: the pipe holds X (FOLL_GET), fork() shares X (no pin awareness), P munmap =>
        # X mc 1; C's write: mc 1 => reuse => the parent's pipe reads child-v2 => leak.
        # E1: P's PTE is still writable when vmsplice runs (X not shared yet) => nothing to
        # break; fork() then shares X and the rest is E0 => leak.
        ((*E0, *E1), out("v1", "child-v2", verdicts={"leak"})),
        # E2/E3: fork() only copies maybe-pinned pages (FOLL_PIN; X has rc 2, a FOLL_GET) =>
        # shared; C's write sees rc 2 (C's mapping + pipe) => copy; the pipe keeps v1.
        # E4/E5: fork() clears X's exclusive bit (not pinned) and shares; C's write: not
        # exclusive, rc 2 => copy.
        ((*E2, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-vmsplice-before-fork-swap": table(
        # P's backup read swaps X in R/O; X stays in the swap cache with swapcount 0.
        # E0: no break; fork() shares X; P munmap => X mc 1; C's write (present PTE, do_wp_page):
        # reuse_swap_page = mc 1 + swapcount 0 <= 1 => reuse => pipe reads child-v2 => leak.
        # E1: P's vmsplice is forced to a write on its R/O PTE: mc 1 + 0 => reuse (X leaves the
        # swap cache, PTE writable); fork() shares X; C's write: mc 1 => reuse => leak.
        ((*E0, *E1), out("v1", "child-v2", verdicts={"leak"})),
        # E2/E3: C's write sees rc 3 (C + swap cache + pipe; 5.18: rc 2 after freeing the swap
        # cache) => copy; the pipe keeps v1.
        # E4/E5: X was exclusive on swap-in (swap PTE bit), fork() clears it (not pinned);
        # C's write: not exclusive, rc > 1 => copy.
        ((*E2, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-vmsplice-unmap-parent": table(
        # E0: fork() shares X; P's vmsplice takes a FOLL_GET ref without breaking COW; P munmap
        # => X mc 1; C's write reuses X => the parent's pipe reads child-v2 => leak.
        (E0, out("v1", "child-v2", verdicts={"leak"})),
        # E1: P's vmsplice breaks COW (X mc 2) => P copies to Y, the pipe holds Y = v1; C's write
        # reuses X, which only C references.
        # E2..E5: no break, the pipe holds X; C's write sees rc 2 / not exclusive => copy.
        ((*E1, *E2, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "cow-vmsplice-unmap-parent-swap": table(
        # P's backup read swaps X in R/O (swap cache, swapcount 0) before fork().
        # E0: fork() shares X; no break; P munmap => X mc 1; C's write: mc 1 + swapcount 0 <= 1
        # => reuse => leak.
        (E0, out("v1", "child-v2", verdicts={"leak"})),
        # E1: P's vmsplice is a forced write: mc 2 => copy Y for P; the pipe holds Y = v1.
        # E2/E3: C's write sees the pipe's and the swap cache's refs => copy.
        # E4/E5: fork() cleared X's exclusive bit; C's write: rc > 1 => copy.
        ((*E1, *E2, *E3, *E4, *E5), out("v1", "v1")),
    ),
    "uffd-wp-read-gup": table(
        # 5.8: the FOLL_GET read GUP on a COW mapping is turned into FOLL_WRITE; the PTE is
        # write-protected by uffd-wp in a registered VMA => the write fault delivers a userfault.
        # 5.8-wrong-side-ok: the caller did not pass the opt-out => the 5.8 default => userfault.
        # The data is untouched: P reads v1.
        (("5.8", "5.8-wrong-side-ok"), out("v1", verdicts={"userfault"})),
        # E0: a read GUP never breaks COW and takes the R/O PTE as it is: no fault.
        # 5.8-break-cow: the COW break for a read is not a write fault => no userfault; X is
        # mapped once (mc 1) => do_wp_page reuses it, the PTE stays write-protected.
        # E2..E5: no forced break; FOLL_GET never unshares (and X is exclusive anyway).
        ((*E0, "5.8-break-cow", *E2, *E3, *E4, *E5), out("v1")),
    ),
    "uffd-wp-wrong-side-ok": table(
        # Plain 5.8 ignores wrong-side-ok: forced write => userfault, as in uffd-wp-read-gup.
        (("5.8",), out("v1", verdicts={"userfault"})),
        # 5.8-wrong-side-ok honours the opt-out: the old E0 behaviour, no COW break, no fault.
        # 5.8-break-cow: does not know the flag, but its COW break is not a write => no userfault.
        # E0, E2..E5: read GUPs do not break COW (FOLL_GET never unshares).
        ((*E0, "5.8-break-cow", "5.8-wrong-side-ok", *E2, *E3, *E4, *E5), out("v1")),
    ),
    "wrong-side-ok-race": table(
        # E0: no break; dio holds X (mc 2); P munmap => mc 1; C's write reuses X => dio reads
        # child-v2, never P's => leak.
        # 5.8-wrong-side-ok: the opt-out gives exactly the E0 behaviour for this GUP => leak.
        ((*E0, "5.8-wrong-side-ok"), out("child-v2", verdicts={"leak"})),
        # 5.8 (flag ignored) and 5.8-break-cow (flag unknown): the GUP breaks COW: X mc 2 =>
        # P copies to Y (R/O under break-cow), dio holds Y = v1; C's write reuses X.
        # E2/E3: dio's ref makes rc 2 when C writes => copy. E4/E5: not exclusive, rc 2 => copy.
        (("5.8", "5.8-break-cow", *E2, *E3, *E4, *E5), out("v1")),
    ),
    "rdma-pin-before-fork": table(
        # E0/E1 (no pin awareness at fork, the pin is a write GUP so the 5.8 variants change
        # nothing): the pin holds X (PTE already writable), fork() shares X (mc 2); P's write
        # copies (mc 2) => P maps Y = parent-v2; the NIC writes X, which only C maps.
        # C reads dma-data: written into P's logical page after the split => leak.
        # P reads parent-v2 while its logical page holds dma-data (a device write through its
        # R/W reference) => the owner misses the device write => stale.
        ((*E0, *E1), out("dma-data", "parent-v2", verdicts={"leak", "stale"})),
        # E2..E5: P has_pinned and X is maybe-pinned (rc >= 1024) => fork() copies X for the
        # child (C gets Z = v1), P keeps X writable (5.19+: and exclusive). P writes X in place,
        # the NIC writes X: C reads v1, P reads dma-data.
        ((*E2, *E3, *E4, *E5), out("v1", "dma-data")),
    ),
    "cow-iouring-fork": table(
        # E0/E1: the fixed buffer (R/W pin) holds X; fork() shares X; P's write copies (mc 2) =>
        # P maps Y = parent-v2, the fixed buffer still reads X = v1: P's own older value => stale.
        ((*E0, *E1), out("v1", verdicts={"stale"})),
        # E2..E5: fork() copies the pinned page for the child; P writes X, which the fixed
        # buffer holds => parent-v2.
        ((*E2, *E3, *E4, *E5), out("parent-v2")),
    ),
    "cow-iouring-ro-mapping": table(
        # No fork. mprotect ro + clear-softdirty + mprotect rw leave X mapped R/O in every era
        # (pre-6.0 no upgrade; 5.19/6.2: soft-dirty tracking forbids it). P's write faults on X.
        # E0/E1: mc 1 => reuse; the fixed buffer sees parent-v2.
        ((*E0, *E1), out("parent-v2")),
        # E2/E3: rc = 1 + 1024 (pin) != 1 => copy: P maps Y = parent-v2, the fixed buffer keeps
        # X = v1, an older value of P's own page => stale (the "wrong COW"). Not needless: X
        # keeps the pin.
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        # E4/E5: X is exclusive (fresh write fault, never shared) => reuse.
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-shared": table(
        # E0: the R/O pin takes X as mapped (no break); P's write: mc 2 => copy; the pin reads
        # X = v1 while P holds parent-v2 => stale.
        (E0, out("v1", verdicts={"stale"})),
        # E1: 5.8 and 5.8-wrong-side-ok (no opt-out passed): forced write => P copies to Y
        # (writable) and pins Y; the write lands in Y. 5.8-break-cow: the copy Y stays R/O,
        # P's write then sees Y mc 1 => reuse. Either way the pin reads parent-v2.
        (E1, out("parent-v2")),
        # E2/E3: no break; pin on X (rc 2 + 1024); P's write copies => stale.
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        # E4/E5: R/O FOLL_PIN on a R/O, !exclusive anon page => unshare fault: rc 2 => copy Y,
        # exclusive, mapped R/O; pin Y; P's write: Y exclusive => reuse => parent-v2.
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-fast-shared": table(
        # As cow-ro-pin-shared. GUP-fast takes R/O PTEs as they are where no break is due
        # (E0, E2, E3); 5.8's get_user_pages_fast refuses R/O PTEs and falls back to the slow
        # path (forced COW break); 5.19+ GUP-fast bails out for a !exclusive page (unshare).
        (E0, out("v1", verdicts={"stale"})),
        (E1, out("parent-v2")),
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-previously-shared": table(
        # After C's exit X is mapped only by P (mc 1, rc 1), still R/O (5.19+: not exclusive).
        # E0: pin X without a break; P's write: mc 1 => reuse => the pin sees parent-v2.
        # E1: the pin's forced write (or 5.8-break-cow's COW break): mc 1 => reuse (break-cow:
        # PTE stays R/O, P's later write reuses again); the pin holds X => parent-v2.
        ((*E0, *E1), out("parent-v2")),
        # E2/E3: pin X (rc 1025); P's write: rc != 1 => copy => the pin keeps v1 => stale.
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        # E4/E5: R/O pin of a !exclusive page => unshare fault: rc 1 => mark exclusive, no copy;
        # P's write: exclusive => reuse => parent-v2.
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-fast-previously-shared": table(
        # As cow-ro-pin-previously-shared (GUP-fast falls back where a fault is due).
        ((*E0, *E1), out("parent-v2")),
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-exclusive": table(
        # X never shared (mc 1, rc 1), PTE R/O after the mprotect/soft-dirty round trip.
        # E0: pin X; P's write: mc 1 => reuse => parent-v2.
        # E1: forced write / break: mc 1 => reuse; pin holds X => parent-v2.
        ((*E0, *E1), out("parent-v2")),
        # E2/E3: pin X (rc 1025); P's write: rc != 1 => copy => pin keeps v1 => stale.
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        # E4/E5: X is exclusive => no unshare needed, pin X; P's write reuses X => parent-v2.
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-ro-pin-fast-exclusive": table(
        # As cow-ro-pin-exclusive (GUP-fast falls back where a fault is due).
        ((*E0, *E1), out("parent-v2")),
        ((*E2, *E3), out("v1", verdicts={"stale"})),
        ((*E4, *E5), out("parent-v2")),
    ),
    "cow-zeropage-basic": table(
        # All eras: both mappings map the shared zero page R/O; P's write to mem faults and gets
        # a fresh zero-filled page (the zero page is never written, nor is it an anon page, so
        # no needless copy). smem reads 0 throughout.
        (ALL, out("0", "0", "0")),
    ),
    "cow-zeropage-ro-pin": table(
        # Reads: mem 0, smem 0 (zero page), then the pin.
        # E0, E2, E3, E4: the R/O pin takes the zero page as mapped (E4 only unshares anon
        # pages); P's write maps a fresh page => the pin reads 0, P's own earlier value => stale.
        ((*E0, *E2, *E3, *E4), out("0", "0", "0", verdicts={"stale"})),
        # E1: the pin breaks COW of the zero page (5.8: forced write, new writable anon page;
        # break-cow: new anon page kept R/O, P's write then reuses it, mc 1) => pin sees
        # parent-v2.
        # E5: FOLL_LONGTERM R/O pin of the zero page in a COW mapping => unshare into an
        # exclusive anon page mapped R/O; P's write reuses it => parent-v2.
        ((*E1, *E5), out("0", "0", "parent-v2")),
    ),
    "cow-zeropage-ro-pin-fast": table(
        # As cow-zeropage-ro-pin (GUP-fast falls back to the slow path where a fault is due).
        ((*E0, *E2, *E3, *E4), out("0", "0", "0", verdicts={"stale"})),
        ((*E1, *E5), out("0", "0", "parent-v2")),
    ),
    "cow-memfd-basic": table(
        # All eras: P's write to the private mapping copies the page-cache page into an anon
        # page (not an anon source: no needless copy; the page cache is untouched, no
        # file-corrupted). smem reads file-data throughout.
        (ALL, out("file-data", "file-data", "file-data")),
    ),
    "cow-memfd-ro-pin": table(
        # Reads: mem and smem map the page-cache page (file-data), then the pin.
        # E0, E2, E3, E4: the R/O pin takes the page-cache page; P's write copies into an anon
        # page => the pin reads file-data, P's own earlier value => stale.
        ((*E0, *E2, *E3, *E4), out("file-data", "file-data", "file-data", verdicts={"stale"})),
        # E1: the pin breaks COW of the page-cache page (anon copy; break-cow keeps it R/O and
        # P's write reuses it). E5: long-term R/O pin unshares the page-cache page into an
        # exclusive anon copy. Either way the pin sees parent-v2.
        ((*E1, *E5), out("file-data", "file-data", "parent-v2")),
    ),
    "cow-memfd-ro-pin-fast": table(
        # As cow-memfd-ro-pin (GUP-fast falls back to the slow path where a fault is due).
        ((*E0, *E2, *E3, *E4), out("file-data", "file-data", "file-data", verdicts={"stale"})),
        ((*E1, *E5), out("file-data", "file-data", "parent-v2")),
    ),
}

# The huge-page presets (PMD-mapped THP, PTE-mapped THP, hugetlb) come after the base-page ones
# in the library; their table is derived in tests/engine/huge_preset_expectations.py.
EXPECTED: dict[str, dict[str, Outcome]] = {**BASE_EXPECTED, **HUGE_EXPECTED}

# (preset, policy) -> reason: disagreements with the engine judged, after re-deriving by hand, to
# be engine bugs. Marked xfail(strict) only so main stays green; each one is reported.
ENGINE_BUGS: dict[tuple[str, str], str] = {}


# ── Checks that need no engine ──────────────────────────────────────────────────────────────

SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,15}")
SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def commands(preset: Preset) -> list[list[str]]:
    """The preset's commands as token lists: comments and blank lines dropped."""
    lines = (line.split("#", 1)[0].strip() for line in preset.text.splitlines())
    return [line.split() for line in lines if line]


def test_every_preset_has_an_expectation_for_every_policy() -> None:
    assert list(EXPECTED) == list(PRESETS)
    for name, by_policy in EXPECTED.items():
        assert sorted(by_policy) == sorted(POLICIES), name


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_is_well_formed(name: str) -> None:
    preset = PRESETS[name]
    assert preset.name == name
    assert SLUG.fullmatch(name)
    assert preset.title and preset.source and preset.text.endswith("\n")
    assert 2 <= len(SENTENCE_END.findall(preset.story)) <= 4, preset.story
    cmds = commands(preset)
    assert 1 <= len(cmds) <= 30
    for tokens in cmds:
        # The subject (process, reference or the `file` keyword) is always a legal name.
        assert NAME.fullmatch(tokens[0]), tokens


@pytest.mark.parametrize("name", list(PRESETS))
def test_expectation_lists_one_value_per_read(name: str) -> None:
    reads = [tokens for tokens in commands(PRESETS[name]) if tokens[1] == "read"]
    for policy, outcome in EXPECTED[name].items():
        assert len(outcome.reads) == len(reads), (name, policy)


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_parses(name: str) -> None:
    scenario = parse(PRESETS[name].text)
    assert len(scenario.commands) == len(commands(PRESETS[name]))


# ── The engine against the hand-derived table ───────────────────────────────────────────────


def _cases() -> list[Any]:
    cases = []
    for name in PRESETS:
        for policy in POLICIES:
            marks = []
            if (name, policy) in ENGINE_BUGS:
                reason = "engine bug: " + ENGINE_BUGS[(name, policy)]
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            cases.append(pytest.param(name, policy, marks=marks, id=f"{name}@{policy}"))
    return cases


@pytest.mark.parametrize(("name", "policy"), _cases())
def test_preset_outcome(name: str, policy: str) -> None:
    trace = replay(PRESETS[name].text, policy)
    read_steps = [s for s in trace.steps if isinstance(s.command, Read | RefRead)]
    observed = tuple(s.observed.text if s.observed is not None else None for s in read_steps)
    kinds = frozenset(v.kind for v in trace.verdicts)
    expected = EXPECTED[name][policy]
    where = [(s.index, s.text) for s in read_steps]
    verdicts = [(v.kind, v.step, v.text) for v in trace.verdicts]
    assert (observed, kinds) == (expected.reads, expected.verdicts), (where, verdicts)
