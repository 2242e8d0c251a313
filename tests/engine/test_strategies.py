"""The scenario strategies of tests/strategies.py draw what they promise: the fuzz tests are only
as good as the text they are fed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from engine import limits
from engine.syntax import ScenarioError, parse
from tests.strategies import (
    Broken,
    invalid_scenarios,
    large_scenario,
    random_scenario,
    scenarios,
)


@settings(max_examples=200, deadline=None)
@given(text=scenarios())
def test_scenarios_draws_text_the_parser_accepts(text: str) -> None:
    parse(text)


@settings(max_examples=200, deadline=None)
@given(broken=invalid_scenarios())
def test_a_broken_token_is_a_syntax_error_at_that_token(broken: Broken) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse(broken.text)
    assert caught.value.line == broken.line
    assert broken.first_column <= caught.value.column <= broken.last_column


def test_scenarios_reach_every_verb_and_option() -> None:
    # The same builder as `scenarios()`, driven by seeds: a verb or option the strategy lost (a
    # typo in a pool, a branch that always gives up) is missing from all of 300 texts.
    texts = "\n".join(random_scenario(seed) for seed in range(300))
    words = (
        *("mmap", "read", "write", "fork", "exit", "munmap", "dontneed", "dontfork", "dofork"),
        *("mprotect", "clear-softdirty", "swapout", "uffd-wp", "vmsplice", "get", "pin"),
        *("iouring", "forcewrite", "race", "longterm", "fast", "wrong-side-ok", "shared"),
        *(" ro", " rw", " on", " off", " as ", "file=", "file ", "release", "#", "\r\n"),
        *("ghost", "pin2", "pipe read", "P read pin"),
        *("backing=thp", "backing=hugetlb", "pte-map"),
    )
    missing = [word for word in words if word not in texts]
    assert not missing


@pytest.mark.parametrize("seed", [0, 1])
def test_large_scenarios_reach_the_limits_without_crossing_them(seed: int) -> None:
    scenario = parse(large_scenario(seed))
    assert len(scenario.commands) == limits.MAX_COMMANDS
    first = scenario.commands[0]
    assert len(getattr(first, "pages", ())) == limits.MAX_PAGES_PER_PROC
