"""Every era's rules, one behaviour per test.

Each expectation is derived by hand from `shared/kernel-cow-semantics.md` (section named in the
comment beside it), never computed by the engine.
"""

from __future__ import annotations

import pytest

from engine.events import Event
from engine.policies import POLICIES, UnknownPolicy, get_policy
from engine.state import Frame, Pte
from engine.trace import Trace, replay

CLASSIC = ("4.8", "5.7")  # E0
ENFORCED = ("5.8", "5.8-break-cow", "5.8-wrong-side-ok")  # E1 and the two proposals
PAGECOUNT = ("5.9", "5.18")  # E2, E3
# E4, E5, 6.13, which differs from 6.2 only on a write to the huge zero page (1ced09e0331f),
# and 6.15, which also reuses PTE-mapped THP (1da190f4d0a6).
EXCLUSIVE = ("5.19", "6.2", "6.13", "6.15")
ALL = CLASSIC + ENFORCED + PAGECOUNT + EXCLUSIVE


def test_policy_table_is_the_design_table() -> None:
    assert tuple(POLICIES) == ALL
    assert get_policy("latest").id == "6.15"
    with pytest.raises(UnknownPolicy, match="expected one of"):
        get_policy("6.99")


def pte(trace: Trace, proc: str, page: str, step: int = -1) -> Pte:
    return trace.steps[step].state.procs[proc].ptes[page]


def frame(trace: Trace, proc: str, page: str, step: int = -1) -> Frame:
    entry = pte(trace, proc, page, step)
    assert entry.pfn is not None
    return trace.steps[step].state.frames[entry.pfn]


def events(trace: Trace, step: int, kind: str) -> list[Event]:
    return [e for e in trace.steps[step].events if e.kind == kind]


def kinds(trace: Trace) -> set[str]:
    return {v.kind for v in trace.verdicts}


def observed(trace: Trace, step: int = -1) -> str:
    value = trace.steps[step].observed
    assert value is not None
    return value.text


# ---------------------------------------------------------------- write fault (§2, §8 reuse_ok)

# clear_refs write-protects the page (a FOLL_GET reference is not a pin, so 5.11's skip does not
# apply) and the next write faults: Hildenbrand's COW summary, issue (2).
OWN_PIPE_THEN_WRITE = """
P mmap a
P write a v1
P vmsplice a as pipe
P clear-softdirty
P write a v2
pipe read
"""


@pytest.mark.parametrize("policy", CLASSIC + ENFORCED)
def test_classic_reuse_ignores_the_pipe_reference(policy: str) -> None:
    # E0/E1 (§2.0 table): mapcount 1, swapcount 0 ⇒ reuse, the pipe's extra ref is not counted.
    # (In 5.8 vmsplice first breaks COW, but the page has mapcount 1 so that is a reuse too.)
    trace = replay(OWN_PIPE_THEN_WRITE, policy)
    assert [e.rule for e in events(trace, 5, "reuse")] == ["mapcount + swapcount ≤ 1"]
    assert observed(trace) == "v2"
    assert kinds(trace) == set()


@pytest.mark.parametrize("policy", PAGECOUNT)
def test_page_count_rule_copies_away_from_own_pipe_reference(policy: str) -> None:
    # E2/E3 (§2.3): refcount 2 (mapping + pipe) ≠ 1 ⇒ copy; the pipe keeps the old page, so the
    # owner's write never reaches it: a wrong COW, seen as a stale read.
    trace = replay(OWN_PIPE_THEN_WRITE, policy)
    (copy,) = events(trace, 5, "copy")
    assert copy.rule == "page_count != 1"
    assert copy.inputs["refcount"] == 2
    assert observed(trace) == "v1"
    assert kinds(trace) == {"stale"}


@pytest.mark.parametrize("policy", EXCLUSIVE)
def test_exclusive_page_is_reused_whatever_references_exist(policy: str) -> None:
    # E4 (§2.5 table): PageAnonExclusive ⇒ reuse, no refcount check at all.
    trace = replay(OWN_PIPE_THEN_WRITE, policy)
    assert [e.rule for e in events(trace, 5, "reuse")] == ["PageAnonExclusive"]
    assert observed(trace) == "v2"


@pytest.mark.parametrize("policy", ALL)
def test_fork_then_parent_write_copies_in_every_era(policy: str) -> None:
    # §1.6: fork shares and write-protects; mapcount 2 / refcount 2 / not exclusive ⇒ copy.
    trace = replay("P mmap a; P write a v1; P fork C; P write a v2; C read a; P read a", policy)
    assert observed(trace, 5) == "v1"
    assert observed(trace, 6) == "v2"
    assert frame(trace, "P", "a").pfn != frame(trace, "C", "a").pfn
    assert kinds(trace) == set()


@pytest.mark.parametrize("policy", ALL)
def test_after_the_child_exits_the_parent_reuses(policy: str) -> None:
    # mapcount 1 and refcount 1 after the child is reaped ⇒ reuse in every era (E4: the page is
    # not exclusive any more, the refcount test passes and sets it again).
    trace = replay("P mmap a; P write a v1; P fork C; C exit; P write a v2", policy)
    assert len(events(trace, 5, "reuse")) == 1
    assert frame(trace, "P", "a").anon_exclusive == (policy in EXCLUSIVE)


SWAPPED_IN_THEN_WRITE = "P mmap a; P write a v1; P swapout a; P read a; P write a v2"


@pytest.mark.parametrize(
    ("policy", "needless"),
    [(p, False) for p in CLASSIC + ENFORCED]
    + [("5.9", True), ("5.18", False)]
    + [(p, False) for p in EXCLUSIVE],
)
def test_swap_cache_reference_makes_5_9_copy_needlessly(policy: str, needless: bool) -> None:
    # E0: reuse_swap_page counts mapcount 1 + swapcount 0 ⇒ reuse and leave the swap cache.
    # E2 (§2.3 f): the swap cache's own reference makes refcount 2 ⇒ copy of a page nobody else
    # uses: a needless copy. E3: the unused swap cache is dropped first ⇒ refcount 1 ⇒ reuse.
    # E4: the swap PTE remembered the exclusive bit ⇒ reuse.
    trace = replay(SWAPPED_IN_THEN_WRITE, policy)
    assert ("needless-copy" in kinds(trace)) == needless
    assert bool(events(trace, 5, "copy")) == needless


# ----------------------------------------------------------------------- GUP (§2.1, §2.5, §2.6)

SHARED_THEN_READ_GUP = "P mmap a; P write a v1; P fork C; C get a ro as g"


@pytest.mark.parametrize("policy", ALL)
def test_read_gup_breaks_cow_only_in_5_8(policy: str) -> None:
    # E1 (§2.1 b): should_force_cow_break ORs in FOLL_WRITE for FOLL_GET on a COW mapping ⇒ C
    # gets a private copy at GUP time. Every other era leaves the page shared.
    trace = replay(SHARED_THEN_READ_GUP, policy)
    split = frame(trace, "P", "a").pfn != frame(trace, "C", "a").pfn
    assert split == (policy in ENFORCED)


def test_wrong_side_ok_is_honoured_only_by_linus_proposal() -> None:
    # §3: only READ_WRONG_SIDE_COW_OK callers skip the COW break; plain 5.8 ignores the flag.
    text = SHARED_THEN_READ_GUP + " wrong-side-ok"
    for policy, split in [("5.8", True), ("5.8-break-cow", True), ("5.8-wrong-side-ok", False)]:
        trace = replay(text, policy)
        assert (frame(trace, "P", "a").pfn != frame(trace, "C", "a").pfn) == split, policy


UFFD_READ_GUP = "P mmap a; P write a v1; P uffd-wp a on; P get a ro as fs; P write a v2"


@pytest.mark.parametrize(
    ("policy", "userfault_steps"),
    [
        ("5.7", [5]),
        ("5.8", [4]),
        ("5.8-wrong-side-ok", [4]),
        ("5.8-break-cow", [5]),
        ("5.9", [5]),
        ("6.2", [5]),
    ],
)
def test_read_gup_on_uffd_wp_page_faults_only_in_5_8(
    policy: str, userfault_steps: list[int]
) -> None:
    # §2.1 f: in 5.8 the read GUP is a write fault ⇒ VM_UFFD_WP userfault on a mere read (the
    # umap deadlock). Peter's FAULT_FLAG_BREAK_COW (§3) sends no userfault for the read; the copy
    # keeps the uffd-wp bit, so the real write at step 5 still traps. Other eras: only the write.
    trace = replay(UFFD_READ_GUP, policy)
    assert [v.step for v in trace.verdicts if v.kind == "userfault"] == userfault_steps


def test_break_cow_keeps_the_uffd_wp_pte_write_protected() -> None:
    trace = replay(UFFD_READ_GUP, "5.8-break-cow")
    after_gup = pte(trace, "P", "a", step=4)
    assert after_gup.uffd_wp and not after_gup.writable


@pytest.mark.parametrize("policy", ALL)
def test_ro_pin_of_shared_page_unshares_from_5_19(policy: str) -> None:
    # E4 (§2.5 b, a7f226604170): R/O FOLL_PIN of a !exclusive anon page ⇒ FAULT_FLAG_UNSHARE ⇒
    # copy (refcount 2), PTE stays read-only. 5.8 breaks COW by a write (PTE writable). Others:
    # the pin takes the shared page.
    trace = replay("P mmap a; P write a v1; P fork C; P pin a ro longterm as p", policy)
    after = pte(trace, "P", "a")
    assert (frame(trace, "P", "a").pfn != frame(trace, "C", "a").pfn) == (
        policy in ENFORCED + EXCLUSIVE
    )
    if policy in EXCLUSIVE:
        assert not after.writable
        assert frame(trace, "P", "a").anon_exclusive
        assert [e.commit for e in events(trace, 4, "copy")] == ["09854ba94c6a"]


@pytest.mark.parametrize("policy", EXCLUSIVE)
def test_ro_foll_get_never_unshares(policy: str) -> None:
    # §2.5 b: FOLL_GET readers are left alone (the part-3 cover letter).
    trace = replay("P mmap a; P write a v1; P fork C; P get a ro as g", policy)
    assert frame(trace, "P", "a").pfn == frame(trace, "C", "a").pfn


@pytest.mark.parametrize("policy", EXCLUSIVE)
def test_ro_pin_of_previously_shared_page_unshares_without_copy(policy: str) -> None:
    # After C is reaped P's page is !exclusive but refcount 1 ⇒ the unshare fault reuses it and
    # marks it exclusive (§2.5 table, unshare column).
    trace = replay("P mmap a; P write a v1; P fork C; C exit; P pin a ro as p", policy)
    assert events(trace, 5, "copy") == []
    assert len(events(trace, 5, "unshare")) == 1
    assert frame(trace, "P", "a").anon_exclusive


ZERO_PAGE_PIN = "P mmap a; P read a; P pin a ro {longterm} as p; P write a v1; p read"


@pytest.mark.parametrize(
    ("policy", "longterm", "pin_sees"),
    [
        ("5.19", "longterm", "0"),
        ("6.2", "longterm", "v1"),
        ("6.2", "", "0"),
        ("5.9", "longterm", "0"),
    ],
)
def test_longterm_ro_pin_unshares_the_zero_page_from_6_2(
    policy: str, longterm: str, pin_sees: str
) -> None:
    # E5 (§2.6 b, 84209e87c696): a R/O FOLL_LONGTERM pin of the zero page in a COW mapping gets
    # an exclusive anon copy first, so it sees the later write. E4 and non-longterm pins pin the
    # zero page itself, and the write moves P to a new page: stale.
    trace = replay(ZERO_PAGE_PIN.format(longterm=longterm), policy)
    assert observed(trace) == pin_sees
    assert ("stale" in kinds(trace)) == (pin_sees == "0")


# -------------------------------------------------------------------------------- fork (§2.3 d)

PIN_THEN_FORK = "P mmap a; P write a v1; P pin a rw longterm as dev; P fork C"


@pytest.mark.parametrize("policy", ALL)
def test_fork_copies_a_pinned_page_for_the_child_from_5_9(policy: str) -> None:
    # 70e806e4e645: has_pinned and page_maybe_dma_pinned ⇒ the child gets a copy, the parent's
    # PTE stays writable on the pinned page. Before 5.9 fork shares it and write-protects both.
    trace = replay(PIN_THEN_FORK, policy)
    copies = policy in PAGECOUNT + EXCLUSIVE
    assert (frame(trace, "P", "a").pfn != frame(trace, "C", "a").pfn) == copies
    assert pte(trace, "P", "a").writable == copies
    assert trace.steps[-1].state.procs["P"].has_pinned == copies


@pytest.mark.parametrize("policy", EXCLUSIVE)
def test_fork_clears_the_exclusive_bit_of_an_unpinned_page(policy: str) -> None:
    trace = replay("P mmap a; P write a v1; P fork C", policy)
    shared = frame(trace, "P", "a")
    assert shared.mapcount == 2 and not shared.anon_exclusive


# ------------------------------------------------------------------------- mprotect (§1.6, §8)


@pytest.mark.parametrize(
    ("policy", "writable"),
    [("5.7", False), ("5.9", False), ("5.18", False), ("5.19", True), ("6.2", True)],
)
def test_mprotect_maps_a_dirty_exclusive_page_writable_from_6_0(
    policy: str, writable: bool
) -> None:
    trace = replay("P mmap a; P write a v1; P mprotect a ro; P mprotect a rw", policy)
    assert pte(trace, "P", "a").writable == writable


@pytest.mark.parametrize(("policy", "writable"), [("5.19", False), ("6.2", True)])
def test_mprotect_upgrades_clean_exclusive_pages_only_from_6_2(policy: str, writable: bool) -> None:
    # A swapped-in exclusive page is mapped clean; 6.0 upgrades dirty pages only, 6.2 clean too.
    text = "P mmap a; P write a v1; P swapout a; P read a; P mprotect a ro; P mprotect a rw"
    trace = replay(text, policy)
    assert pte(trace, "P", "a").writable == writable


@pytest.mark.parametrize("policy", EXCLUSIVE)
def test_soft_dirty_tracking_blocks_the_mprotect_upgrade(policy: str) -> None:
    # 76aefad628aa: cow.c's clear_refs trick keeps the PTE read-only.
    text = "P mmap a; P write a v1; P mprotect a ro; P clear-softdirty; P mprotect a rw"
    trace = replay(text, policy)
    assert not pte(trace, "P", "a").writable
    assert events(trace, 5, "protect")[0].rule == "soft-dirty needs a fault"


# -------------------------------------------------------------------- clear_refs and swap-out


@pytest.mark.parametrize("policy", ALL)
def test_clear_refs_leaves_pinned_pages_writable_from_5_11(policy: str) -> None:
    trace = replay("P mmap a; P write a v1; P pin a rw as dev; P clear-softdirty", policy)
    assert pte(trace, "P", "a").writable == (policy in PAGECOUNT + EXCLUSIVE)


@pytest.mark.parametrize("policy", ALL)
def test_pinned_pages_are_not_swapped_out_from_5_11(policy: str) -> None:
    trace = replay("P mmap a; P write a v1; P pin a rw as dev; P swapout a", policy)
    swapped = pte(trace, "P", "a").swap_slot is not None
    assert swapped == (policy in CLASSIC + ENFORCED)


@pytest.mark.parametrize("policy", ALL)
def test_pageout_leaves_shared_pages_alone(policy: str) -> None:
    trace = replay("P mmap a; P write a v1; P fork C; P swapout a", policy)
    assert pte(trace, "P", "a").pfn is not None


SWAP_CVE = """
P mmap a
P write a v1
P swapout a
P fork C
C vmsplice a as pipe
C munmap a
P write a v2
pipe read
"""


@pytest.mark.parametrize("policy", ALL)
def test_swap_variant_of_cve_2020_29374_stays_open_until_5_18(policy: str) -> None:
    # §2.3 f: do_swap_page kept reuse_swap_page until c145e0b47c77 (5.18): after C's munmap the
    # page in the swap cache has mapcount 0 and swapcount 1 (P's entry) ⇒ P's write fault reuses
    # it and the pipe sees P's write. 5.8 broke COW at vmsplice time (C owns a copy).
    trace = replay(SWAP_CVE, policy)
    leaks = policy in CLASSIC + ("5.9",)
    assert observed(trace) == ("v2" if leaks else "v1")
    assert ("leak" in kinds(trace)) == leaks


# ----------------------------------------------------------------------- Dirty COW (§5)

DIRTY_COW = """
file F root-only
P mmap a file=F ro
P mmap b file=F shared ro
P forcewrite a evil {race}
P read b
P read a
"""


@pytest.mark.parametrize("policy", ALL)
def test_dirty_cow_race_corrupts_the_file_only_before_4_9(policy: str) -> None:
    # Pre-19be0eaffa3a GUP dropped FOLL_WRITE after the COW; the racing MADV_DONTNEED makes the
    # retry a read fault on the page cache, and the write lands there.
    trace = replay(DIRTY_COW.format(race="race"), policy)
    corrupted = policy == "4.8"
    assert observed(trace, 5) == ("evil" if corrupted else "root-only")
    assert ("file-corrupted" in kinds(trace)) == corrupted


@pytest.mark.parametrize("policy", ALL)
def test_forcewrite_without_race_goes_to_a_private_copy(policy: str) -> None:
    trace = replay(DIRTY_COW.format(race=""), policy)
    assert observed(trace, 5) == "root-only"
    assert observed(trace, 6) == "evil"
    assert frame(trace, "P", "a").kind == "anon"
    assert kinds(trace) == set()


@pytest.mark.parametrize(
    ("policy", "rule"),
    [
        ("5.7", "FOLL_COW and PTE dirty"),
        ("5.18", "FOLL_COW and PTE dirty"),
        ("5.19", "anon exclusive page"),
        ("6.2", "anon exclusive page"),
    ],
)
def test_proof_that_cow_happened_per_era(policy: str, rule: str) -> None:
    # §5 model rule: 2016–2022 proof is FOLL_COW && dirty (after a write fault), 2022+ proof is an
    # exclusive anon page (5535be309971), which needs no fault at all here.
    trace = replay("P mmap a; P write a v1; P mprotect a ro; P forcewrite a v2", policy)
    proofs = [e for e in trace.steps[4].events if e.kernel == "can_follow_write_pte"]
    assert [e.rule for e in proofs if e.rule == rule] == [rule]
    assert bool(events(trace, 4, "reuse")) == (policy not in EXCLUSIVE)


@pytest.mark.parametrize("policy", ALL)
def test_forcewrite_to_a_shared_read_only_mapping_is_refused(policy: str) -> None:
    trace = replay("file F x; P mmap a file=F shared ro; P forcewrite a evil", policy)
    assert [e.kind for e in trace.steps[3].events] == ["efault"]
    assert trace.steps[3].state == trace.steps[2].state


# ----------------------------------------------------------------- misuse is a recorded step


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("P mmap a; P write b v", "segv"),
        ("P mmap a; P mprotect a ro; P write a v", "segv"),
        ("P mmap a; P write a v; P vmsplice a as pipe; pipe write x", "efault"),
        ("P mmap a; Q read a", "error"),
        ("P mmap a; P get b rw", "efault"),
        ("P mmap a; P exit; P read a", "error"),
    ],
)
def test_misuse_is_recorded_and_changes_nothing(text: str, kind: str) -> None:
    for policy in ALL:
        trace = replay(text, policy)
        last = trace.steps[-1]
        assert [e.kind for e in last.events] == [kind]
        assert last.state == trace.steps[-2].state
        assert ("segv" in kinds(trace)) == (kind == "segv")


# ------------------------------------------------------------------------ leak versus stale


def test_leak_names_a_value_the_reader_never_held() -> None:
    trace = replay(
        "P mmap a; P write a v1; P fork C; C vmsplice a as pipe; C munmap a; "
        "P write a v2; pipe read",
        "5.7",
    )
    (verdict,) = trace.verdicts
    assert (verdict.kind, verdict.step, verdict.subject) == ("leak", 7, "pipe")
    assert "v2 (written by P at step 6)" in verdict.text


def test_stale_names_an_outdated_value_of_the_readers_own() -> None:
    trace = replay(
        "P mmap a; P write a v1; P fork C; P pin a ro longterm as p; P write a v2; p read", "5.9"
    )
    (verdict,) = trace.verdicts
    assert (verdict.kind, verdict.step, verdict.subject) == ("stale", 6, "p")


# ------------------------------------------------------ userfaultfd and fork details (probe)


@pytest.mark.parametrize("policy", ALL)
def test_proc_mem_write_to_a_uffd_wp_page_fails_instead_of_waiting(policy: str) -> None:
    # __access_remote_vm GUPs without `locked`: no FAULT_FLAG_ALLOW_RETRY, so handle_userfault()
    # returns VM_FAULT_SIGBUS — the write fails (-EIO), no userfault, the page keeps its value.
    trace = replay("P mmap a; P write a v1; P uffd-wp a on; P forcewrite a f2; P read a", policy)
    assert [e.kind for e in trace.steps[4].events] == ["efault"]
    assert observed(trace) == "v1"
    assert "userfault" not in kinds(trace)


@pytest.mark.parametrize("policy", ALL)
def test_uffd_wp_marker_on_unpopulated_file_page_from_5_19(policy: str) -> None:
    # 5.19 brought uffd-wp to shmem with PTE markers: the first write traps. Before, uffd-wp was
    # anonymous-only and registering a memfd mapping fails.
    trace = replay("file F f0; P mmap f file=F; P uffd-wp f on; P write f x; P read f", policy)
    if policy in EXCLUSIVE:
        assert [v.step for v in trace.verdicts if v.kind == "userfault"] == [4]
    else:
        assert [e.kind for e in trace.steps[3].events] == ["efault"]
        assert "userfault" not in kinds(trace)
    assert observed(trace) == "x"


@pytest.mark.parametrize("policy", ALL)
def test_fork_copies_no_ptes_of_a_vma_without_anon_vma(policy: str) -> None:
    # vma_needs_copy: a VMA that only read the zero page has no anon_vma; the child faults in.
    trace = replay("P mmap a; P read a; P fork C", policy)
    assert "a" not in trace.steps[-1].state.procs["C"].ptes
    after_write = replay("P mmap a; P write a v; P dontneed a; P read a; P fork C", policy)
    assert after_write.steps[-1].state.procs["C"].ptes["a"].pfn == 0


@pytest.mark.parametrize("policy", ALL)
def test_uffd_register_refuses_a_vma_without_maywrite(policy: str) -> None:
    # 29ec90660d68 (CVE-2018-18397): a shared mapping of a file opened read-only.
    trace = replay("file F f0; P mmap f file=F shared ro; P uffd-wp f on; P read f", policy)
    assert [e.kind for e in trace.steps[3].events] == ["efault"]
    assert not trace.steps[-1].state.procs["P"].vmas["f"].uffd_wp
