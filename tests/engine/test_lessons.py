"""The built-in lessons and challenges, checked against the engine under their eras.

Every expectation below is derived from kernel history (kernel-cow-semantics.md), written by
hand with its reason, not copied from the engine's output: a lesson whose note says "the pipe
now sees the secret" must see the secret in the engine, under the era the note speaks of.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from engine.annotations import GOAL_VERDICT_KINDS
from engine.lesson import SIGSEGV, ask, evaluate_goal, observation
from engine.lessons import CHALLENGES, LESSONS
from engine.policies import POLICIES
from engine.presets import PRESETS
from engine.syntax import format_command, parse
from engine.trace import Trace, replay

ERAS = tuple(POLICIES)
UP_TO_5_7 = ("4.8", "5.7")
FIVE_EIGHT = ("5.8", "5.8-break-cow", "5.8-wrong-side-ok")


def every(value: str) -> dict[str, str]:
    return dict.fromkeys(ERAS, value)


def but(default: str, eras: tuple[str, ...], value: str) -> dict[str, str]:
    """``default`` in every era, ``value`` in ``eras``."""
    return {era: value if era in eras else default for era in ERAS}


def traces(text: str) -> dict[str, Trace]:
    scenario = parse(text)
    return {era: replay(scenario, era) for era in ERAS}


def step_of(text: str, command: str, nth: int = 1) -> int:
    """The step of the ``nth`` command whose canonical text is ``command``."""
    seen = 0
    for step, cmd in enumerate(parse(text).commands, start=1):
        if format_command(cmd) == command:
            seen += 1
            if seen == nth:
                return step
    raise AssertionError(f"no {command!r} in the lesson")


# (lesson, read command, nth occurrence) -> what the read observes per era, with why.
OBSERVED: list[tuple[str, str, int, Mapping[str, str], str]] = [
    ("cow-from-scratch", "C read a", 1, every("v1"), "fork shares the page the parent wrote"),
    ("cow-from-scratch", "C read a", 2, every("v1"), "the parent's write copies a shared page"),
    ("cow-from-scratch", "P read a", 2, every("parent-v2"), "the child's write reuses its page"),
    ("cow-from-scratch", "P read a", 1, every("0"), "a never-written page reads the zero page"),
    ("dirty-cow", "reader read f", 1, every("root-data"), "nothing has written the file yet"),
    ("dirty-cow", "attacker read a", 1, every("pwned"), "the forced write is the attacker's own"),
    (
        "dirty-cow",
        "reader read f",
        2,
        but("root-data", ("4.8",), "pwned"),
        "up to 4.8 the dropped FOLL_WRITE lets the write reach the page cache (19be0eaffa3a)",
    ),
    (
        "vmsplice-leak",
        "pipe read",
        1,
        but("BORING-DATA", UP_TO_5_7, "THIS-IS-SECRET"),
        "mapcount reuse up to 5.7; 5.8 breaks COW at vmsplice; 5.9 counts the pipe's reference",
    ),
    ("august-2020", "P read page", 1, every("v1"), "a read GUP never changes the data"),
    (
        "august-2020",
        "ref read",
        1,
        but("v1", (*UP_TO_5_7, "5.8-wrong-side-ok"), "secret"),
        "Linus' race: the wrong side is taken by the mapcount rule when the GUP did not break COW",
    ),
    (
        "page-count",
        "pipe read",
        1,
        but("BORING-DATA", UP_TO_5_7, "THIS-IS-SECRET"),
        "the vmsplice leak is closed by 5.8 and by 5.9's page_count rule",
    ),
    (
        "page-count",
        "Q read buf",
        1,
        but("dma-data", (*UP_TO_5_7, *FIVE_EIGHT), "parent-v2"),
        "before 70e806e4e645 (5.9) fork shared the pinned page and the parent copied away",
    ),
    (
        "page-count",
        "pipe2 read",
        1,
        but("v1", (*UP_TO_5_7, "5.9"), "parent-v2"),
        "do_swap_page kept the mapcount+swapcount rule until c145e0b47c77 (5.18); 5.8 broke "
        "COW at vmsplice",
    ),
    (
        "anon-exclusive",
        "pin read",
        1,
        but("parent-v2", (*UP_TO_5_7, "5.9", "5.18"), "v1"),
        "a R/O pin of a shared page is stale until 5.19 unshares it (a7f226604170); 5.8 broke "
        "COW at pin time",
    ),
    (
        "anon-exclusive",
        "zpin read",
        1,
        but("0", (*FIVE_EIGHT, "6.2", "6.13", "6.15"), "q-v2"),
        "the zero page is pinned as-is until 6.2 unshares it (84209e87c696); 5.8 broke COW at "
        "pin time",
    ),
    ("anon-exclusive", "Q read zmem", 1, every("0"), "a never-written page reads the zero page"),
    ("page-count", "E read mem", 1, every("v1"), "swap-in brings back what S wrote before fork"),
]

# (lesson) -> the verdict kinds each era must give, with why.
VERDICTS: dict[str, dict[str, tuple[str, ...]]] = {
    "cow-from-scratch": dict.fromkeys(ERAS, ()),
    # Dirty COW corrupts the file and the reader sees data nobody may write, up to 4.8.
    "dirty-cow": {era: ("leak", "file-corrupted") if era == "4.8" else () for era in ERAS},
    "vmsplice-leak": {era: ("leak",) if era in UP_TO_5_7 else () for era in ERAS},
    # 5.8 and Linus' variant raise the uffd-wp fault for a read GUP; Peter's does not. Linus'
    # opt-out and the mapcount rule leak in the race.
    "august-2020": {
        "4.8": ("leak",),
        "5.7": ("leak",),
        "5.8": ("userfault",),
        "5.8-break-cow": (),
        "5.8-wrong-side-ok": ("leak", "userfault"),
        "5.9": (),
        "5.18": (),
        "5.19": (),
        "6.2": (),
        "6.13": (),  # base pages only: 6.13 and 6.15 changed nothing here
        "6.15": (),  # base pages only: 6.15 changed nothing here
    },
    "page-count": {
        "4.8": ("leak", "stale"),
        "5.7": ("leak", "stale"),
        "5.8": ("stale",),
        "5.8-break-cow": ("stale",),
        "5.8-wrong-side-ok": ("stale",),
        "5.9": ("leak",),
        "5.18": (),
        "5.19": (),
        "6.2": (),
        "6.13": (),
        "6.15": (),
    },
    "anon-exclusive": {
        era: ("stale",) if era in (*UP_TO_5_7, "5.9", "5.18", "5.19") else () for era in ERAS
    },
}


def test_there_are_six_lessons_and_each_names_its_title_and_era() -> None:
    assert list(LESSONS) == [
        "cow-from-scratch",
        "dirty-cow",
        "vmsplice-leak",
        "august-2020",
        "page-count",
        "anon-exclusive",
    ]
    for lesson in LESSONS.values():
        annotations = parse(lesson.text).annotations
        assert (annotations.title, annotations.policy) == (lesson.title, lesson.policy)


@pytest.mark.parametrize("name", list(LESSONS))
def test_a_lesson_has_notes_on_most_steps_and_questions_with_at_least_two_choices(
    name: str,
) -> None:
    scenario = parse(LESSONS[name].text)
    a = scenario.annotations
    commented = {step for step, _ in a.notes} | {q.step for q in a.questions}
    assert len(commented & set(range(1, len(scenario.commands) + 1))) > len(scenario.commands) / 2
    assert a.note(0), "a lesson opens with a note on the empty machine"
    asked = ask(scenario)
    assert asked
    for q in asked:
        assert len(q.choices) >= 2, q.question
        assert set(q.answers.values()) <= set(q.choices)


@pytest.mark.parametrize(
    ("name", "command", "nth", "expected", "why"),
    OBSERVED,
    ids=[f"{o[0]}:{o[1]}#{o[2]}" for o in OBSERVED],
)
def test_what_a_lesson_says_a_read_shows_is_what_it_shows(
    name: str, command: str, nth: int, expected: Mapping[str, str], why: str
) -> None:
    text = LESSONS[name].text
    step = step_of(text, command, nth)
    seen = {era: observation(t, step) for era, t in traces(text).items()}
    assert seen == expected, why


@pytest.mark.parametrize("name", list(VERDICTS))
def test_a_lessons_verdicts_are_the_ones_its_notes_tell(name: str) -> None:
    for era, t in traces(LESSONS[name].text).items():
        assert set(t.verdict_kinds()) == set(VERDICTS[name][era]), era


def test_every_lesson_read_is_checked() -> None:
    checked = {(o[0], o[1], o[2]) for o in OBSERVED}
    for name, lesson in LESSONS.items():
        scenario = parse(lesson.text)
        counts: dict[str, int] = {}
        for cmd in scenario.commands:
            text = format_command(cmd)
            if text.split(" ")[1] == "read" or text.endswith(" read"):
                counts[text] = counts.get(text, 0) + 1
                assert (name, text, counts[text]) in checked, (name, text)


def test_the_notes_that_send_the_learner_to_an_era_name_one_where_the_answer_changes() -> None:
    # "Press ] to see 5.8" in the vmsplice lesson: the pipe stops leaking there.
    text = LESSONS["vmsplice-leak"].text
    assert "Press ] to see 5.8" in text
    step = step_of(text, "pipe read")
    t = traces(text)
    assert observation(t["5.7"], step) != observation(t["5.8"], step)
    # "Press ] to see 5.18" in the page_count lesson: the swap hole closes.
    text = LESSONS["page-count"].text
    assert "Press ] to see 5.18" in text
    step = step_of(text, "pipe2 read")
    t = traces(text)
    assert observation(t["5.9"], step) != observation(t["5.18"], step)


# Every commit id a lesson or challenge names, each one in kernel-cow-semantics.md (the project's
# kernel reference): a typo in an id would send a student to the wrong commit.
CITED = {
    "19be0eaffa3a",
    "17839856fd58",
    "09854ba94c6a",
    "a308c71bf1e6",
    "c89357e27f20",
    "3faa52c03f44",
    "70e806e4e645",
    "c145e0b47c77",
    "6c287605fd56",
    "a7f226604170",
    "84209e87c696",
    "8d6a0ac09a16",
}


def test_lessons_name_only_the_commits_of_the_kernel_reference() -> None:
    named = {
        commit
        for lesson in LESSONS.values()
        for commit in re.findall(r"\b[0-9a-f]{12}\b", lesson.text)
    }
    assert named == CITED
    # tests/engine/this file → the checkout → the folder beside it that holds shared/.
    reference = Path(__file__).resolve().parents[3] / "shared" / "kernel-cow-semantics.md"
    if not reference.exists():
        pytest.skip("the kernel reference lives beside the repository, not in it")
    assert set(re.findall(r"\b[0-9a-f]{12}\b", reference.read_text())) >= CITED


# ---------------------------------------------------------------------------------------------
# Challenges


def test_there_are_at_least_ten_challenges_each_with_a_goal_brief_and_ordered_hints() -> None:
    assert len(CHALLENGES) >= 10
    for c in CHALLENGES.values():
        assert parse(c.start).annotations.goal is not None
        assert parse(c.solution).annotations.goal == parse(c.start).annotations.goal
        assert c.brief and c.title
        assert len(c.hints) >= 2


@pytest.mark.parametrize("name", list(CHALLENGES))
def test_a_challenges_solution_meets_its_goal_and_its_start_does_not(name: str) -> None:
    c = CHALLENGES[name]
    solved = evaluate_goal(parse(c.solution))
    assert solved is not None and solved.met, solved
    started = evaluate_goal(parse(c.start))
    assert started is not None and not started.met
    # The solution extends the starting scenario: the learner never has to delete a line.
    assert parse(c.solution).commands[: len(parse(c.start).commands)] == parse(c.start).commands


def test_challenges_rise_in_difficulty_by_the_number_of_terms_and_commands() -> None:
    # Not a strict order, but the last challenge is the longest and the first the shortest.
    sizes = [len(parse(c.solution).commands) for c in CHALLENGES.values()]
    assert sizes[0] == min(sizes) and sizes[-1] == max(sizes)


def test_the_challenges_use_every_verdict_kind_and_every_term_form() -> None:
    kinds: set[str] = set()
    forms: set[str] = set()
    for c in CHALLENGES.values():
        goal = parse(c.solution).annotations.goal
        assert goal is not None
        for term in goal:
            forms.add(term.kind)
            if term.verdict:
                kinds.add(term.verdict)
    assert kinds == set(GOAL_VERDICT_KINDS)
    assert forms == {"verdict", "no-verdict", "ok", "differ"}


def test_every_preset_is_a_small_lesson_opening_in_its_storys_era() -> None:
    for preset in PRESETS.values():
        a = parse(preset.text).annotations
        assert a.title == preset.title
        assert a.policy in POLICIES


# A preset's era is where its story happens: where the bug it tells shows, or, for a story every
# era gets right, the newest era.
PRESET_ERA_SHOWS = {
    "dirty-cow": "file-corrupted",
    "cve-2020-29374": "leak",
    "cow-vmsplice-unmap-child-swap": "leak",
    "cow-vmsplice-before-fork": "leak",
    "uffd-wp-read-gup": "userfault",
    "wrong-side-ok-race": "leak",
    "rdma-pin-before-fork": "stale",
    "cow-iouring-ro-mapping": "stale",
    "cow-ro-pin-shared": "stale",
    "cow-zeropage-ro-pin": "stale",
    "cow-memfd-ro-pin": "stale",
}


@pytest.mark.parametrize(("name", "kind"), PRESET_ERA_SHOWS.items())
def test_a_preset_opens_in_an_era_where_its_story_shows(name: str, kind: str) -> None:
    preset = PRESETS[name]
    era = parse(preset.text).annotations.policy
    assert era is not None
    assert kind in replay(preset.text, era).verdict_kinds()


def test_a_challenge_read_can_fault_so_sigsegv_is_offered() -> None:
    (asked,) = ask(parse(CHALLENGES["refused"].solution.replace("P read a", "#? q\nP read a")))
    assert SIGSEGV in asked.choices


# (lesson, command, nth, process, page) -> (mapcount, refcount) the note of that step states:
# in every era where the step's decision is the same (counting is the same everywhere). In the
# 5.8 eras vmsplice broke COW first (17839856fd58), as the note says: the child's copy is
# pinned by the pipe and the parent's page is mapped by the parent alone.
COUNTERS = [
    ("cow-from-scratch", "P fork C", 1, "C", "a", 2, 2, ERAS, "fork duplicates the PTE"),
    ("page-count", "P fork C", 1, "C", "data", 2, 2, ERAS, "note: mapcount 2"),
    (
        "page-count",
        "C vmsplice data as pipe",
        1,
        "P",
        "data",
        2,
        3,
        tuple(e for e in ERAS if e not in FIVE_EIGHT),
        "note: page_count 3",
    ),
    ("page-count", "C vmsplice data as pipe", 1, "P", "data", 1, 1, FIVE_EIGHT, "note: in 5.8"),
    (
        "page-count",
        "C munmap data",
        1,
        "P",
        "data",
        1,
        2,
        tuple(e for e in ERAS if e not in FIVE_EIGHT),
        "note: mapcount 1, page_count 2",
    ),
    ("page-count", "C munmap data", 1, "P", "data", 1, 1, FIVE_EIGHT, "note: in 5.8"),
    ("august-2020", "A fork B", 1, "B", "mem", 2, 2, ERAS, "note: mapcount 2"),
]


@pytest.mark.parametrize(
    ("name", "command", "nth", "proc", "page", "mapcount", "refcount", "eras", "why"), COUNTERS
)
def test_the_counters_a_note_states_are_the_engines(
    name: str,
    command: str,
    nth: int,
    proc: str,
    page: str,
    mapcount: int,
    refcount: int,
    eras: tuple[str, ...],
    why: str,
) -> None:
    text = LESSONS[name].text
    step = step_of(text, command, nth)
    for era, t in traces(text).items():
        if era not in eras:
            continue
        state = t.steps[step].state
        pte = state.procs[proc].ptes[page]
        assert pte.pfn is not None, (era, why)
        frame = state.frames[pte.pfn]
        assert (frame.mapcount, frame.refcount) == (mapcount, refcount), (era, why)


def test_the_swap_entry_fork_duplicates_has_swapcount_two() -> None:
    # page-count, part 3: "fork() duplicates the swap entry: swapcount 2".
    text = LESSONS["page-count"].text
    step = step_of(text, "S fork E")
    for era, t in traces(text).items():
        state = t.steps[step].state
        slots = {state.procs[p].ptes["mem"].swap_slot for p in ("S", "E")}
        assert len(slots) == 1 and None not in slots, era
        (slot,) = slots
        assert slot is not None
        assert state.swap[slot].swapcount == 2, era


def test_cow_from_scratch_copies_on_the_parents_write_and_reuses_on_the_childs() -> None:
    # The notes: the parent's write copies the shared page; the child's later write finds the
    # old page mapped by it alone, with no other reference, and reuses it — in every era.
    text = LESSONS["cow-from-scratch"].text
    parent_write = step_of(text, "P write a parent-v2")
    child_write = step_of(text, "C write a child-v2")
    for era, t in traces(text).items():

        def pfn(step: int, proc: str, t: Trace = t) -> int | None:
            return t.steps[step].state.procs[proc].ptes["a"].pfn

        assert pfn(parent_write, "P") != pfn(parent_write - 1, "P"), era
        assert pfn(parent_write, "C") == pfn(parent_write - 1, "C"), era
        assert pfn(child_write, "C") == pfn(child_write - 1, "C"), era
        # and the zero page: the first read maps a frame, the first write another one.
        read, write = step_of(text, "P read a"), step_of(text, "P write a v1")
        read_pfn = pfn(read, "P")
        assert read_pfn is not None and t.steps[read].state.frames[read_pfn].kind == "zero", era
        assert pfn(write, "P") != pfn(read, "P"), era
