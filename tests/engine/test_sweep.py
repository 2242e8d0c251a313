"""The sweep: exact reuse of replays, the bitset space, the answer per backing, and the JSON.

The whole library's sweep is built once per test process (`full`, session-scoped): every test
here reads it, none rebuilds it. Under xdist each worker that runs one of these tests builds its
own (a few seconds); nothing is shared through the file system, so workers cannot race.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from engine.policies import POLICIES
from engine.policies.custom import differences
from engine.policies.knobs import KNOBS
from engine.presets import PRESETS
from engine.sweep import (
    Space,
    Sweep,
    all_points,
    clean_sets,
    cubes,
    point_policy,
    refused,
    run_sweep,
    sweep_json,
)
from engine.trace import replay


@pytest.fixture(scope="session")
def full() -> Sweep:
    return run_sweep()


@pytest.fixture(scope="session")
def doc(full: Sweep) -> dict[str, Any]:
    return sweep_json(full)


def direct_kinds(preset: str, settings: dict[str, str]) -> frozenset[str]:
    return frozenset(v.kind for v in replay(PRESETS[preset].text, point_policy(settings)).verdicts)


def runnable_sample(n: int, seed: int) -> list[dict[str, str]]:
    space = Space()
    rng = random.Random(seed)
    picked: list[dict[str, str]] = []
    while len(picked) < n:
        i = rng.randrange(space.size)
        if space.runnable >> i & 1:
            picked.append(space.settings(i))
    return picked


def test_a_replay_records_only_the_knobs_it_reached() -> None:
    policy = point_policy(POLICIES["5.9"].knobs)
    replay("P mmap a\nP write a v1\nP read a\n", policy)
    assert policy.consulted is not None
    assert "fork_pinned" not in policy.consulted
    assert "gup_read" not in policy.consulted
    policy = point_policy(POLICIES["5.9"].knobs)
    replay("P mmap a\nP write a v1\nP fork C\nC write a v2\n", policy)
    assert policy.consulted is not None
    assert {"fork_pinned", "wp_reuse"} <= set(policy.consulted)


def test_the_space_numbers_points_as_all_points_does_and_refuses_as_resolve_does() -> None:
    space = Space()
    rng = random.Random(11)
    sample = set(rng.sample(range(space.size), 1000))
    count = 0
    for i, settings in enumerate(all_points()):
        count += 1
        if i not in sample:
            continue
        assert space.settings(i) == settings
        assert space.index(settings) == i
        assert bool(space.refused >> i & 1) == refused(settings), settings
        if i % 5 == 0:
            # Every choice's bitset holds exactly the points with that choice.
            for k in KNOBS:
                for c, bits in space.choice[k].items():
                    assert bool(bits >> i & 1) == (settings[k] == c)
    assert count == space.size


def test_reuse_is_exact_on_a_sample_of_points(full: Sweep) -> None:
    """Every point's verdicts in the sweep equal a fresh replay from the empty machine, though
    the sweep replayed once per leaf of a decision tree and started most replays mid-scenario."""
    assert full.replays < full.points_run * len(full.presets) / 1000
    names = [p.name for p in full.presets]
    for settings in runnable_sample(30, 13):
        i = full.space.index(settings)
        for preset, verdicts in zip(names, full.verdicts, strict=True):
            swept = frozenset(k for k, bits in verdicts.items() if bits >> i & 1)
            assert swept == direct_kinds(preset, settings), (preset, settings)


def test_the_sweep_json_is_reproducible() -> None:
    presets = [PRESETS[n] for n in list(PRESETS)[:6]]
    first = json.dumps(sweep_json(run_sweep(presets)), sort_keys=True)
    second = json.dumps(sweep_json(run_sweep(presets)), sort_keys=True)
    assert first == second


def test_two_processes_sweep_what_one_does() -> None:
    presets = [PRESETS[n] for n in list(PRESETS)[20:26]]
    one, two = run_sweep(presets), run_sweep(presets, workers=2)
    assert one.verdicts == two.verdicts and one.replays == two.replays


def test_the_sweep_covers_every_point_and_the_eras(doc: dict[str, Any]) -> None:
    assert doc["points_total"] == len(list(all_points()))
    assert doc["points_run"] + doc["points_refused"] == doc["points_total"]
    assert sum(o["designs"] for o in doc["outcomes"]) == doc["points_run"]
    for era in POLICIES.values():
        expected = {
            kind: sum(1 for p in PRESETS.values() if kind in replay(p.text, era).verdict_kinds())
            for kind in doc["kinds"]
        }
        assert doc["eras"][era.id] == expected, era.id
    assert list(doc["presets"]) == list(PRESETS)


def test_outcomes_are_exact_cubes_of_points_with_those_counts(
    full: Sweep, doc: dict[str, Any]
) -> None:
    """Expanding an outcome's cubes gives runnable points, none twice, whose counts are the
    outcome's; sampled per outcome against the sweep's own per-point counts."""
    rng = random.Random(5)
    for outcome in doc["outcomes"]:
        seen = 0
        for cube in outcome["cubes"]:
            choices = [cube.get(k, doc["knobs"][k]) for k in doc["knobs"]]
            size = 1
            for c in choices:
                size *= len(c)
            seen += size
            for _ in range(3):
                settings = {k: rng.choice(c) for k, c in zip(doc["knobs"], choices, strict=True)}
                assert not refused(settings)
                assert full.counts(settings) == outcome["counts"]
        assert seen == outcome["designs"]


def test_cubes_cover_a_set_exactly() -> None:
    space = Space()
    rng = random.Random(3)
    bits = 0
    for i in rng.sample(range(space.size), 500):
        bits |= 1 << i
    bits |= space.choice["gup_read"]["break-cow"] & space.choice["ro_pin"]["anon"]
    rebuilt = 0
    for cube in cubes(space, bits):
        part = space.full
        for k, allowed in cube.items():
            part &= sum((space.choice[k][c] for c in allowed), 0)
        assert not rebuilt & part, "cubes overlap"
        rebuilt |= part
    assert rebuilt == bits


def test_expected_failures_are_cow_c_xfails_and_stay_out_of_clean(doc: dict[str, Any]) -> None:
    xfail = [p.name for p in PRESETS.values() if "XFAIL" in p.source]
    assert doc["expected_failures"] == xfail
    assert doc["summary"]["hugetlb"]["expected_failures"] == xfail
    assert doc["summary"]["base"]["expected_failures"] == []
    # Without them, today's kernel is clean on every backing; with them nothing would be.
    for backing, answer in doc["summary"].items():
        assert "6.15" in answer["eras_clean"], backing
        assert answer["clean"] > 0


def test_the_summary_per_backing_agrees_with_replays(full: Sweep, doc: dict[str, Any]) -> None:
    """A design the summary calls clean gives no verdict on its backing's presets but the
    expected failures, and a design it does not call clean gives one: sampled."""
    xfail = set(doc["expected_failures"])
    sets = clean_sets(full)
    for settings in runnable_sample(12, 17):
        i = full.space.index(settings)
        for backing in ("base", "hugetlb"):
            presets = [p for p in PRESETS.values() if p.backing == backing and p.name not in xfail]
            dirty = any(direct_kinds(p.name, settings) for p in presets)
            assert bool(sets[backing] >> i & 1) == (not dirty), (backing, settings)


def test_the_smallest_change_is_clean_and_none_smaller_is(full: Sweep, doc: dict[str, Any]) -> None:
    sets = clean_sets(full)
    space = full.space
    for backing, answer in doc["summary"].items():
        assert set(answer["smallest_change"]) == set(POLICIES), backing
        for era_id, changes in answer["smallest_change"].items():
            era = POLICIES[era_id]
            settings = {**era.knobs, **dict(c.split("=", 1) for c in changes)}
            assert len(differences(settings, era)) == len(changes)
            assert sets[backing] >> space.index(settings) & 1, (backing, era_id)
            # Every point with fewer knobs changed is not clean.
            for n in range(len(changes)):
                for knobs in itertools.combinations(KNOBS, n):
                    for values in itertools.product(
                        *([c.id for c in KNOBS[k].choices if c.id != era.knobs[k]] for k in knobs)
                    ):
                        near = {**era.knobs, **dict(zip(knobs, values, strict=True))}
                        at = space.index(near)
                        assert not (sets[backing] >> at & 1), (backing, era_id, near)
            assert (changes == []) == (era_id in answer["eras_clean"])


def test_on_base_pages_6_2_is_clean_and_the_headline_is_not_empty(doc: dict[str, Any]) -> None:
    base = doc["summary"]["base"]
    assert "6.2" in base["eras_clean"] and base["smallest_change"]["6.2"] == []
    assert doc["clean_points"] == doc["summary"]["all"]["clean"] > 0
    assert all(doc["smallest_clean_change"][e] for e in POLICIES)
    expanded = sum(
        len(list(itertools.product(*(c.get(k, doc["knobs"][k]) for k in doc["knobs"]))))
        for c in doc["clean"]
    )
    assert expanded == doc["clean_points"]


def test_no_design_closes_the_hugetlb_vmsplice_leak_cow_c_marks_xfail(full: Sweep) -> None:
    """hugetlb_wp() reuses by mapcount in every era and no knob changes it or vmsplice()'s
    FOLL_GET reference, so "vmsplice() before fork() ... with hugetlb" leaks at every point
    (the selftest's XFAIL)."""
    at = [p.name for p in full.presets].index("cow-vmsplice-before-fork-hugetlb")
    assert full.verdicts[at]["leak"] == full.space.runnable
    for settings in runnable_sample(20, 14):
        assert "leak" in direct_kinds("cow-vmsplice-before-fork-hugetlb", settings)


def test_the_sweep_answers_the_august_2020_thread(doc: dict[str, Any]) -> None:
    """Peter's FAULT_FLAG_BREAK_COW keeps 5.8's leak fixes without its userfaults; neither it
    nor Linus' opt-out closes every leak without changing the reuse rule as well. Under the
    page_count rule the engine's read-only copy after FAULT_FLAG_BREAK_COW turns pins stale
    where the inversion's writable copy does not."""
    aug = doc["august_2020"]["gup_read"]
    assert aug["break-as-write"]["userfault"] > 0
    assert aug["break-cow"]["userfault"] == 0
    assert aug["break-cow"]["leak"] == aug["break-as-write"]["leak"] > 0
    assert aug["none"]["leak"] > aug["break-as-write"]["leak"]
    under = doc["august_2020"]["under_page_count"]["gup_read"]
    assert under["break-cow"]["stale"] > under["wrong-side-ok"]["stale"]
    nearest = doc["august_2020"]["no_leak_no_userfault_nearest"]
    assert nearest and all("wp_reuse=" in n for n in nearest)
    assert set(doc["knobs_that_matter"]["userfault"]) == {"gup_read"}
    assert set(doc["knobs_that_matter"]["file-corrupted"]) == {"force_write"}


def test_knobs_that_matter_counts_disagreeing_groups(full: Sweep, doc: dict[str, Any]) -> None:
    """Recounted for one knob and kind point by point (a group: the runnable points that differ
    only in ``gup_read``), from per-point counts read out of the presets' own bitsets."""
    space = full.space
    size = (space.size + 7) // 8
    per_preset = [v.get("userfault", 0).to_bytes(size, "little") for v in full.verdicts]
    runnable = space.runnable.to_bytes(size, "little")
    stride, radix = space.stride["gup_read"], space.radix["gup_read"]
    groups: dict[int, set[int]] = {}
    for i in range(space.size):
        if not runnable[i >> 3] >> (i & 7) & 1:
            continue
        count = sum(b[i >> 3] >> (i & 7) & 1 for b in per_preset if b[i >> 3])
        # The group: the point's index with its gup_read digit zeroed.
        groups.setdefault(i - (i // stride % radix) * stride, set()).add(count)
    changed = sum(1 for counts in groups.values() if len(counts) > 1)
    assert doc["knobs_that_matter"]["userfault"]["gup_read"] == changed


def test_docs_lab_md_shows_what_the_command_prints(doc: dict[str, Any]) -> None:
    """docs/lab.md's generated block is `cowlab lab sweep --docs docs/lab.md`'s output for
    the engine as it is: regenerate it when this fails."""
    from app.cli.lab import replace_docs_block, sweep_markdown

    path = Path(__file__).parents[2] / "docs" / "lab.md"
    text = path.read_text()
    assert replace_docs_block(text, sweep_markdown(doc)) == text, (
        "docs/lab.md is stale: run `cowlab lab sweep --docs docs/lab.md`"
    )


def test_a_stored_sweep_reads_back_as_it_was(tmp_path: Path) -> None:
    """app/views/lab_store.py: what a worker loads answers as the sweep it was made from."""
    from app.views.lab_store import load, store

    presets = [PRESETS[n] for n in ("cve-2020-29374", "uffd-wp-read-gup", "dirty-cow")]
    sweep = run_sweep(presets)
    doc = store(sweep, tmp_path, key="k")
    stored = load(tmp_path, "k")
    assert stored is not None and stored.doc == json.loads(json.dumps(doc))
    assert load(tmp_path, "other") is None
    fixed = {"gup_read": "break-cow", "wp_reuse": "mapcount"}
    bits = stored.matching(fixed, clean=False)
    rows = stored.rows(bits, 25)
    assert len(rows) == 25
    for settings, counts in rows:
        assert all(settings[k] == v for k, v in fixed.items())
        assert counts == sweep.counts(settings)
    clean = stored.matching({}, clean=True)
    assert stored.count(clean) == doc["clean_points"]
