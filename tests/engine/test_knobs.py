"""The knob space: eras are points, custom points compose choices, nonsense is refused."""

from __future__ import annotations

import inspect
import json

import pytest

from engine.policies import POLICIES, RefusedCombination, UnknownPolicy, get_policy
from engine.policies.base import Policy
from engine.policies.custom import Point, build, differences, nearest_eras, parse
from engine.policies.knobs import KNOBS, REFUSALS, Choice, resolve
from engine.presets import PRESETS
from engine.syntax import ScenarioError
from engine.syntax import parse as parse_scenario
from engine.trace import replay, trace_to_json


def _farthest_base(era: Policy) -> Policy:
    return max(POLICIES.values(), key=lambda e: len(differences(era.knobs, e)))


@pytest.mark.parametrize("era_id", list(POLICIES))
def test_every_era_equals_its_knob_point_on_every_preset(era_id: str) -> None:
    """Running an era by its knob settings, built from the era farthest from it, gives the era's
    trace exactly (only the policy id differs)."""
    era = POLICIES[era_id]
    base = _farthest_base(era)
    point = Point(base.id, tuple(differences(era.knobs, base)))
    assert point.changes, "the farthest era must differ"
    composed = build(point, POLICIES)
    assert composed.id.startswith("custom:") and composed.knobs == era.knobs
    for name, preset in PRESETS.items():
        ours = trace_to_json(replay(preset.text, era))
        theirs = trace_to_json(replay(preset.text, composed))
        assert theirs.pop("policy") == point.id
        ours.pop("policy")
        assert json.dumps(theirs, sort_keys=True) == json.dumps(ours, sort_keys=True), name


def test_an_era_module_holds_no_rule_of_its_own() -> None:
    """Every era-specific decision lives in a knob choice, written once: the era classes define
    no methods, only identity and knob settings."""
    for era in POLICIES.values():
        for cls in type(era).__mro__:
            if cls in (Policy, object):
                break
            methods = [n for n, v in vars(cls).items() if inspect.isfunction(v)]
            assert not methods, f"{cls.__name__} defines {methods}"


def test_every_choice_names_its_kernel_function_and_why() -> None:
    for knob in KNOBS.values():
        assert len(knob.choices) >= 2, knob.id
        assert len({c.id for c in knob.choices}) == len(knob.choices)
        for choice in knob.choices:
            assert isinstance(choice, Choice) and choice.knob == knob.id
            assert choice.kernel and choice.why and choice.label


def test_every_era_choice_is_used_and_eras_are_distinct_points() -> None:
    points = {tuple(e.knobs[k] for k in KNOBS) for e in POLICIES.values()}
    assert len(points) == len(POLICIES)
    for knob in KNOBS.values():
        for choice in knob.choices:
            assert any(e.knobs[knob.id] == choice.id for e in POLICIES.values()), repr(choice)


def test_the_eight_issue_knobs_exist_with_their_choices() -> None:
    expected = {
        "wp_reuse": {"mapcount", "page-count", "anon-exclusive"},
        "gup_read": {"none", "break-as-write", "break-cow", "wrong-side-ok"},
        "ro_pin": {"never", "anon", "longterm-all"},
        "fork_pinned": {"share", "copy"},
        "force_write": {"drop-foll-write", "foll-cow-dirty", "anon-exclusive"},
        "swapin_reuse": {"mapcount", "page-count", "anon-exclusive"},
        "swap_pinned": {"allow", "refuse"},
        "mprotect_upgrade": {"never", "dirty-exclusive"},
    }
    for knob, choices in expected.items():
        assert choices <= {c.id for c in KNOBS[knob].choices}, knob


def test_custom_id_is_canonical_in_knob_order_without_base_equal_knobs() -> None:
    policy = get_policy("custom:base=5.9,ro_pin=never, gup_read=break-cow ,wp_reuse=page-count")
    assert policy.id == "custom:base=5.9,gup_read=break-cow"
    assert get_policy(policy.id) is policy
    mixed = get_policy("custom:base=5.7,swapin_reuse=page-count,wp_reuse=page-count")
    assert mixed.id == "custom:base=5.7,wp_reuse=page-count,swapin_reuse=page-count"


def test_a_custom_point_equal_to_its_base_is_the_base_era() -> None:
    assert get_policy("custom:base=5.9") is POLICIES["5.9"]
    assert get_policy("custom:base=5.9,wp_reuse=page-count") is POLICIES["5.9"]


def test_a_choice_that_needs_the_exclusive_bit_brings_it() -> None:
    plain = get_policy("custom:base=5.9,gup_read=break-cow")
    assert not plain.has_exclusive_bit
    with_bit = get_policy("custom:base=5.9,wp_reuse=anon-exclusive")
    assert with_bit.has_exclusive_bit
    trace = replay("P mmap a\nP write a v1\n", with_bit)
    assert any(f.anon_exclusive for f in trace.steps[-1].state.frames.values())
    trace = replay("P mmap a\nP write a v1\n", plain)
    assert not any(f.anon_exclusive for f in trace.steps[-1].state.frames.values())


def test_fork_copy_brings_has_pinned_to_an_era_that_never_kept_it() -> None:
    text = "P mmap a\nP write a v1\nP pin a ro as dev\nP fork C\nP write a v2\ndev read\n"
    assert "stale" in replay(text, "5.7").verdict_kinds()
    point = get_policy("custom:base=5.7,wp_reuse=page-count,fork_pinned=copy")
    trace = replay(text, point)
    assert trace.steps[3].state.procs["P"].has_pinned
    assert "stale" not in trace.verdict_kinds()


@pytest.mark.parametrize(
    ("policy_id", "named"),
    [
        ("custom:base=5.19,fork_pinned=share", ["fork_pinned=share", "wp_reuse=anon-exclusive"]),
        ("custom:base=5.7,ro_pin=anon", ["fork_pinned=share", "ro_pin=anon"]),
        ("custom:base=6.2,swap_pinned=allow", ["swap_pinned=allow", "ro_pin=longterm-all"]),
    ],
)
def test_refused_combinations_name_the_conflicting_knobs(policy_id: str, named: list[str]) -> None:
    with pytest.raises(RefusedCombination) as info:
        get_policy(policy_id)
    for words in named:
        assert words in str(info.value)


def test_no_era_is_refused() -> None:
    for era in POLICIES.values():
        resolve(era.knobs)
    assert REFUSALS


@pytest.mark.parametrize(
    ("policy_id", "message"),
    [
        ("custom:gup_read=none", "needs base=ID"),
        ("custom:base=latest,gup_read=none", "base=latest"),
        ("custom:base=9.9", "unknown base era"),
        ("custom:base=5.9,nope=x", "unknown knob 'nope'"),
        ("custom:base=5.9,gup_read=maybe", "unknown choice 'maybe' for knob gup_read"),
        ("custom:base=5.9,gup_read=none,gup_read=none", "twice"),
        ("custom:base=5.9,gup_read", "not KNOB=CHOICE"),
        ("custom:base=5.9," + "x" * 600, "longer than"),
    ],
)
def test_bad_custom_ids_say_what_is_wrong(policy_id: str, message: str) -> None:
    with pytest.raises(UnknownPolicy, match=message):
        parse(policy_id, POLICIES)


def test_nearest_eras_of_a_point() -> None:
    settings = {**POLICIES["5.8"].knobs, "gup_read": "break-cow"}
    assert [e.id for e in nearest_eras(settings, POLICIES)] == ["5.8-break-cow"]
    one_off = {**POLICIES["6.2"].knobs, "clear_refs": "write-protect-all"}
    assert [e.id for e in nearest_eras(one_off, POLICIES)] == ["6.2"]


@pytest.mark.parametrize(
    "text",
    [
        "#policy custom:base=5.9,gup_read=break-cow\nP mmap a\n",
        "#goal leak@custom:base=5.9\nP mmap a\n",
    ],
)
def test_the_scenario_language_names_eras_not_custom_points(text: str) -> None:
    with pytest.raises(ScenarioError, match="a policy id"):
        parse_scenario(text)
