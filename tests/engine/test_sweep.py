"""The sweep: exact reuse of replays, reproducible figures, and what it answers."""

from __future__ import annotations

import json
import random

import pytest

from engine.policies import POLICIES
from engine.policies.knobs import needs_of, resolve
from engine.presets import PRESETS
from engine.sweep import Memo, Sweep, all_points, point_policy, refused, run_sweep, sweep_json
from engine.trace import replay


@pytest.fixture(scope="module")
def full() -> Sweep:
    return run_sweep()


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


def test_reuse_is_exact_on_a_sample_of_points() -> None:
    """Every memo answer equals a fresh replay, for points the memo answered from another
    point's replay (the memo is filled by the whole space first)."""
    presets = [PRESETS[n] for n in ("cve-2020-29374", "dirty-cow", "cow-vmsplice-before-fork")]
    memos = [Memo(p) for p in presets]
    points = [p for p in all_points() if not refused(p)]
    for settings in points:
        keeps = needs_of(resolve(settings))
        for memo in memos:
            memo.kinds(settings, keeps)
    assert sum(m.replays for m in memos) < len(points) * len(presets) / 20
    for settings in random.Random(13).sample(points, 120):
        keeps = needs_of(resolve(settings))
        for memo, preset in zip(memos, presets, strict=True):
            direct = frozenset(v.kind for v in replay(preset.text, point_policy(settings)).verdicts)
            assert memo.kinds(settings, keeps) == direct, (preset.name, settings)


def test_the_sweep_json_is_reproducible() -> None:
    presets = [PRESETS[n] for n in list(PRESETS)[:6]]
    first = json.dumps(sweep_json(run_sweep(presets)), sort_keys=True)
    second = json.dumps(sweep_json(run_sweep(presets)), sort_keys=True)
    assert first == second


def test_the_sweep_covers_every_point_and_the_eras(full: Sweep) -> None:
    doc = sweep_json(full)
    assert doc["points_total"] == len(list(all_points()))
    assert doc["points_run"] + doc["points_refused"] == doc["points_total"]
    assert len(doc["points"]) == doc["points_run"]
    # The eras' rows agree with replaying the eras themselves.
    for era in POLICIES.values():
        expected = {
            kind: sum(1 for p in PRESETS.values() if kind in replay(p.text, era).verdict_kinds())
            for kind in doc["kinds"]
        }
        assert doc["eras"][era.id] == expected, era.id
    assert doc["smallest_clean_change"]["6.2"] == ["6.2"]
    assert all(doc["smallest_clean_change"][e] for e in POLICIES)


def test_the_sweep_answers_the_august_2020_thread(full: Sweep) -> None:
    """Peter's FAULT_FLAG_BREAK_COW keeps 5.8's leak fixes without its userfaults; neither it
    nor Linus' opt-out closes every leak without changing the reuse rule as well."""
    doc = sweep_json(full)
    aug = doc["august_2020"]["gup_read"]
    assert aug["break-as-write"]["userfault"] > 0
    assert aug["break-cow"]["userfault"] == 0
    assert aug["break-cow"]["leak"] == aug["break-as-write"]["leak"] > 0
    assert aug["none"]["leak"] > aug["break-as-write"]["leak"]
    nearest = doc["august_2020"]["no_leak_no_userfault_nearest"]
    assert nearest and all("wp_reuse=" in n for n in nearest)
    assert set(doc["knobs_that_matter"]["userfault"]) == {"gup_read"}
    assert set(doc["knobs_that_matter"]["file-corrupted"]) == {"force_write"}
