"""The huge-page half of the preset library: cow.c's anonymous cases, each on every huge backing.

Their outcomes under every era are checked in test_presets.py against the hand-derived table of
huge_preset_expectations.py; this file checks that the library is what it says it is: the
selftest's titles, every case cowlab has for base pages on every backing, the base case's own
steps after the backing's populate, and a `backing` that agrees with the scenario.
"""

from __future__ import annotations

import pytest

from engine import commands as c
from engine.huge_presets import BACKINGS, CASES, HUGE_BACKINGS, STORIES
from engine.presets import PRESETS, Preset
from engine.syntax import format_command, parse
from tests.engine.preset_tables import POLICIES

BASE_SUFFIX = " ... with base page"
HUGE = [p for p in PRESETS.values() if p.backing != "base"]


def _base_of(preset: Preset) -> Preset:
    stem = preset.name.removesuffix(f"-{preset.backing}")
    assert stem != preset.name, preset.name
    return PRESETS[stem]


def _commands(preset: Preset) -> list[c.Command]:
    return list(parse(preset.text).commands)


def test_the_selftests_anonymous_cases_on_base_pages_are_all_on_every_huge_backing() -> None:
    # Every base-page preset titled after an anonymous cow.c case ("... with base page"; the
    # swapped-out ones are the same cases on another backing) has one preset per huge backing.
    anonymous = {p.name for p in PRESETS.values() if p.title.endswith(BASE_SUFFIX)}
    assert {case.base for case in CASES} == anonymous
    assert len(anonymous) == 14
    for backing in HUGE_BACKINGS:
        assert {_base_of(p).name for p in HUGE if p.backing == backing} == anonymous, backing
    assert set(STORIES) == {(case.base, b) for case in CASES for b in HUGE_BACKINGS}


@pytest.mark.parametrize("preset", HUGE, ids=lambda p: p.name)
def test_a_huge_preset_is_titled_as_the_selftest_announces_it(preset: Preset) -> None:
    base = _base_of(preset)
    assert base.title.endswith(BASE_SUFFIX)
    assert (
        preset.title
        == base.title.removesuffix(BASE_SUFFIX) + f" ... with {BACKINGS[preset.backing]}"
    )
    assert preset.text.startswith(f"#title {preset.title}\n#policy ")


def test_the_titles_spell_the_backings_as_cow_c_prints_them() -> None:
    # run_with_thp / run_with_pte_mapped_thp / run_with_hugetlb print "%zu kB" of a 2 MiB size.
    titles = {p.title for p in HUGE}
    assert "Basic COW after fork() ... with THP (2048 kB)" in titles
    assert "vmsplice() + unmap in child ... with PTE-mapped THP (2048 kB)" in titles
    assert "R/O GUP-fast pin on R/O-mapped exclusive page ... with hugetlb (2048 kB)" in titles


@pytest.mark.parametrize("preset", HUGE, ids=lambda p: p.name)
def test_a_huge_preset_runs_its_base_case_after_populating_its_backing(preset: Preset) -> None:
    base = [format_command(cmd) for cmd in _commands(_base_of(preset))]
    huge = [format_command(cmd) for cmd in _commands(preset)]
    assert base[:2] == ["P mmap mem", "P write mem v1"]
    populate = {
        "thp": ["P mmap mem backing=thp", "P write mem v1"],
        "pte-thp": ["P mmap mem backing=thp", "P write mem v1", "P pte-map mem"],
        "hugetlb": ["P mmap mem backing=hugetlb", "P write mem v1"],
    }[preset.backing]
    assert huge == populate + base[2:]


@pytest.mark.parametrize("preset", list(PRESETS.values()), ids=lambda p: p.name)
def test_the_backing_a_preset_names_is_the_one_its_scenario_maps(preset: Preset) -> None:
    cmds = _commands(preset)
    backings = {cmd.backing for cmd in cmds if isinstance(cmd, c.Mmap)}
    pte_mapped = any(isinstance(cmd, c.PteMap) for cmd in cmds)
    expected = {"base": ({"base"}, False), "thp": ({"thp"}, False)}
    expected |= {"pte-thp": ({"thp"}, True), "hugetlb": ({"hugetlb"}, False)}
    assert (backings, pte_mapped) == expected[preset.backing]


def test_the_library_keeps_base_pages_first_then_one_backing_after_the_other() -> None:
    order = [p.backing for p in PRESETS.values()]
    assert order == sorted(order, key=["base", *HUGE_BACKINGS].index)
    # Within a backing the cases follow the selftest's order.
    for backing in HUGE_BACKINGS:
        numbers = [_case_number(p) for p in HUGE if p.backing == backing]
        assert numbers == sorted(numbers) == list(range(1, 15)), backing


def _case_number(preset: Preset) -> int:
    base = _base_of(preset).name
    return next(case.number for case in CASES if case.base == base)


@pytest.mark.parametrize("preset", HUGE, ids=lambda p: p.name)
def test_a_huge_preset_opens_in_a_real_era_and_names_its_selftest_run(preset: Preset) -> None:
    era = preset.text.splitlines()[1].removeprefix("#policy ")
    assert era in POLICIES
    label = {"thp": "PMD-mapped THP", "pte-thp": "PTE-mapped THP", "hugetlb": "hugetlb"}
    assert preset.source.startswith(
        f"tools/testing/selftests/mm/cow.c, test {_case_number(preset)} ({label[preset.backing]})"
    )
