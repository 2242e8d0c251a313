"""The run memo: each scenario is replayed once per policy, whatever the link looks like."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from app.views import runs
from engine.commands import Scenario
from engine.policies import POLICIES
from engine.presets import PRESETS
from engine.syntax import format_command, parse
from engine.trace import Trace, replay, trace_to_json

# The commands alone: no comments, no annotations.
CVE = "\n".join(format_command(c) for c in parse(PRESETS["cve-2020-29374"].text).commands)


@pytest.fixture
def memo() -> runs.RunMemo:
    return runs.RunMemo()


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every full replay asked of the engine (the policy id of each)."""
    calls: list[str] = []

    def counting(scenario: Scenario, policy: str) -> Trace:
        calls.append(policy)
        return replay(scenario, policy)

    monkeypatch.setattr(runs, "replay", counting)
    return calls


def test_the_same_commands_spelled_another_way_are_not_replayed_again(
    replays: list[str], memo: runs.RunMemo
) -> None:
    oneline = ";".join(CVE.splitlines())
    spaced = " ;  ".join(CVE.splitlines()) + "  "
    first = runs.run(CVE, "latest", memo)
    for text, policy in ((oneline, "6.15"), (spaced, "latest"), (CVE, "6.15")):
        again = runs.run(text, policy, memo)
        assert [s.state for s in again.trace.steps] == [s.state for s in first.trace.steps]
    assert first.policy.id == "6.15"
    assert replays == ["6.15"]


def test_a_run_found_under_other_lines_reports_its_own_lines(
    replays: list[str], memo: runs.RunMemo
) -> None:
    oneline = ";".join(line for line in CVE.splitlines() if line)
    runs.run(oneline, "5.7", memo)
    again = runs.run(CVE, "5.7", memo)
    assert replays == ["5.7"]
    assert trace_to_json(again.trace) == trace_to_json(replay(parse(CVE), "5.7"))
    assert [s.line for s in again.trace.steps[1:]] == list(range(1, 8))


def test_an_action_replays_only_the_command_it_adds(replays: list[str], memo: runs.RunMemo) -> None:
    base = ";".join(line for line in CVE.splitlines() if line)
    runs.run(base, "5.7", memo)
    added = runs.run(base + ";P read data", "5.7", memo)
    assert replays == ["5.7"]
    fresh = replay(parse(base + ";P read data"), "5.7")
    assert trace_to_json(added.trace) == trace_to_json(fresh)
    assert added.trace.verdicts == fresh.verdicts
    assert added.layout == runs._prepare(parse(base + ";P read data"), fresh)[0].layout


def test_comparing_and_stepping_replay_each_policy_once(
    replays: list[str], memo: runs.RunMemo
) -> None:
    for _step in range(5):
        for policy in POLICIES:
            runs.run(CVE, policy, memo)
    assert sorted(replays) == sorted(POLICIES)


def test_the_memo_is_bounded_by_weight_and_entries() -> None:
    memo = runs.RunMemo(max_entries=3, max_weight=100)
    run = runs.run(CVE, "5.7")
    for i in range(5):
        memo.put(("", str(i)), run, 10)
    assert len(memo) == 3 and memo.weight == 30
    assert memo.get(("", "0")) is None and memo.get(("", "4")) is run
    memo.put(("", "heavy"), run, 90)
    assert memo.weight <= 100 and memo.get(("", "heavy")) is run
    memo.put(("", "too heavy"), run, 101)  # larger than the whole memo: not kept
    assert memo.get(("", "too heavy")) is None and memo.get(("", "heavy")) is run


def test_a_runs_weight_grows_with_what_its_trace_holds() -> None:
    small = runs._prepare(parse(CVE), replay(parse(CVE), "5.7"))[1]
    big_text = (
        "P mmap "
        + " ".join(f"g{i}" for i in range(64))
        + "\n"
        + "\n".join(f"P fork C{i}" for i in range(16))
    )
    big = runs._prepare(parse(big_text), replay(parse(big_text), "5.7"))[1]
    assert 7 < small < 200
    assert big > 16 * 64


def test_concurrent_requests_get_the_same_runs(memo: runs.RunMemo) -> None:
    texts = [p.text for p in list(PRESETS.values())[:8]]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: runs.run(texts[i % 8], "5.9", memo), range(64)))
    for i, r in enumerate(got):
        assert r.trace.steps == runs.run(texts[i % 8], "5.9", memo).trace.steps


def test_without_a_memo_every_run_is_replayed(replays: list[str]) -> None:
    first = runs.run(CVE, "5.7")
    again = runs.run(CVE, "5.7")
    assert replays == ["5.7", "5.7"]
    assert trace_to_json(again.trace) == trace_to_json(first.trace)


def test_an_event_source_names_each_part_once() -> None:
    """ "rule · kernel function · commit": a rule named after its kernel function (unmap's
    `zap_pte_range`) is said once, on every step of every preset."""
    seen_unmap = False
    for preset in PRESETS.values():
        r = runs.run(preset.text, "5.7")
        for events in r.events:
            for event in events:
                parts = event.source.split(" · ") if event.source else []
                assert len(parts) == len(set(parts)), event.source
                seen_unmap |= event.source == "zap_pte_range"
    assert seen_unmap


def test_a_comment_is_part_of_the_memo_key_and_stays_in_the_link(replays: list[str]) -> None:
    commented = CVE + "  # shared in class"
    plain = runs.run(CVE, "6.2")
    kept = runs.run(commented, "6.2")
    assert replays == ["6.2", "6.2"]
    assert plain.link_text == ";".join(CVE.splitlines())
    assert kept.link_text == CVE + "  # shared in class"
    assert kept.editor_text == kept.link_text


def test_a_text_with_comments_is_replayed_whole_not_extended_from_a_prefix(
    replays: list[str],
) -> None:
    # The canonical text of a commented scenario is joined by newlines and its comments may
    # hold `;`: cutting at the last `;` finds the key of another scenario, here one with the
    # same two commands, and "extending" it by the last command would replay a third.
    runs.run("P mmap a\nP write a v\n# a", "6.2")
    r = runs.run("P mmap a\nP write a v\n# a; b", "6.2")
    assert len(r.trace.steps) == 3
    assert replays == ["6.2", "6.2"]


def test_a_lesson_link_without_policy_opens_in_its_policy() -> None:
    assert runs.lesson_policy("#policy 5.7\nP mmap a") == "5.7"
    assert runs.lesson_policy("P mmap a") is None
    assert runs.lesson_policy("#policy 5.7\nP bogus a") is None


def test_the_memo_keeps_a_run_at_every_limit(replays: list[str], memo: runs.RunMemo) -> None:
    """The worst scenario within each limit is replayed once, then found: the references
    case (64 pins, then 63 forks copying the pinned pages) copied its 4,300-frame table at
    every step and weighed 3.3 million, more than the whole memo, so every route replayed it."""
    from app.bench.web import worst_cases

    for case in worst_cases():
        if case.limit in ("references", "commands"):
            replays.clear()
            found = runs.run(case.text, "6.2", memo)
            assert found.weight <= runs.RUNS_MAX_WEIGHT, case.limit
            assert runs.run(case.text, "6.2", memo) is found
            assert replays == ["6.2"], case.limit
            memo.clear()
