"""The shape of `engine.policies`: every era rule there and only there, one module per era, and
the eras' declared kernel ranges (what the probe maps a running kernel with)."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

import engine.machine
import engine.policies
from engine.policies import POLICIES, Policy, discover, policy_for_kernel
from engine.trace import replay

MACHINE = Path(engine.machine.__file__)
COMMIT_ID = re.compile(r"\b[0-9a-f]{12}\b")
# An era id or kernel version such as 5.8, 5.19 or 6.2 (also in "5.19+" or "pre-4.9").
ERA = re.compile(r"(?<![\w.])[2-7]\.\d{1,2}(?![\w.])")


def machine_sources() -> list[Path]:
    paths = sorted(MACHINE.parent.glob("*.py")) if MACHINE.name == "__init__.py" else [MACHINE]
    assert paths
    return paths


@pytest.mark.parametrize("pattern", [COMMIT_ID, ERA], ids=["commit ids", "era ids"])
def test_the_machine_holds_no_era_fact(pattern: re.Pattern[str]) -> None:
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for path in machine_sources()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "era facts belong in engine/policies:\n" + "\n".join(found)


def test_the_machine_names_no_era() -> None:
    words = {p.label for p in POLICIES.values()} | {"Dirty COW", "Peter Xu", "Linus", "proposal"}
    for path in machine_sources():
        text = path.read_text()
        assert not [w for w in words if w in text], path.name


def test_the_grep_would_see_an_era_fact() -> None:
    assert COMMIT_ID.search('commit="1493a1913e34"')
    assert ERA.search("# 5.18+ (before the test)")
    assert ERA.search("pre-4.9 kernels")
    assert not ERA.search("kernel-cow-semantics.md §1.6")


def test_the_machine_reads_no_era_attribute() -> None:
    """The machine asks decision methods; era flags (the old ``drops_unused_swapcache`` and
    friends) do not exist any more, and ``has_exclusive_bit`` is the picture's business."""
    for path in machine_sources():
        text = path.read_text()
        assert "has_exclusive_bit" not in text, path.name
        assert not re.search(r"policy\.(?!\w+\()", text), f"{path.name} reads a policy attribute"


@pytest.mark.parametrize(
    ("version", "era"),
    # From DESIGN.md §3 and kernel history: 4.9 has the Dirty COW fix (19be0eaffa3a), 5.8 the
    # enforced COW (17839856fd58), 5.9 page_count (09854ba94c6a), 5.18 COW fixes part 1,
    # 5.19 PageAnonExclusive, 6.2 reliable R/O long-term pins (84209e87c696), 6.13 a THP on a
    # huge zero page write (1ced09e0331f, pushed to mainline in the 6.13 merge window, Nov
    # 2024), 6.15 COW reuse of PTE-mapped THP (1da190f4d0a6, first in v6.15-rc1).
    [
        ((2, 6), "4.8"),
        ((4, 8), "4.8"),
        ((4, 9), "5.7"),
        ((5, 7), "5.7"),
        ((5, 8), "5.8"),
        ((5, 9), "5.9"),
        ((5, 17), "5.9"),
        ((5, 18), "5.18"),
        ((5, 19), "5.19"),
        ((6, 1), "5.19"),
        ((6, 2), "6.2"),
        ((6, 12), "6.2"),
        ((6, 13), "6.13"),
        ((6, 14), "6.13"),
        ((6, 15), "6.15"),
        ((6, 18), "6.15"),
    ],
)
def test_each_mainline_version_has_exactly_its_era(version: tuple[int, int], era: str) -> None:
    assert policy_for_kernel(version).id == era
    merged = [p for p in POLICIES.values() if p.covers(version)]
    assert [p.id for p in merged] == [era], "declared ranges overlap"


def test_proposals_are_never_a_kernel() -> None:
    proposals = [p for p in POLICIES.values() if not p.merged]
    assert {p.id for p in proposals} == {"5.8-break-cow", "5.8-wrong-side-ok"}
    assert not any(p.covers(p.since) for p in proposals)


def test_every_era_module_holds_one_policy_named_after_its_file() -> None:
    package = Path(engine.policies.__file__).parent
    modules = sorted(p.stem for p in package.glob("e[0-9]*.py"))
    assert len(modules) == len(POLICIES)
    for module in modules:
        policy = sys.modules[f"engine.policies.{module}"].POLICY
        assert module == "e" + policy.id.replace(".", "_").replace("-", "_")


NEW_ERA = textwrap.dedent(
    '''
    """A made-up era 7.9 that changes one knob: mprotect never maps a page writable again."""

    from __future__ import annotations

    from engine.policies.e6_15 import LargeFolioReuse615


    class NoUpgrade79(LargeFolioReuse615):
        id = "7.9"
        label = "No mprotect upgrade"
        kernels = "7.9 – today"
        commits = ("0123456789ab",)
        story = "A made-up era for the test."
        since = (7, 9)
        until = None
        knobs = {**LargeFolioReuse615.knobs, "mprotect_upgrade": "never"}


    POLICY = NoUpgrade79()
    '''
)


# mprotect(PROT_WRITE) of an exclusive anon page: 6.2 maps it writable at once, so the write
# after it takes no fault; an era without the upgrade faults and reuses.
ROUND_TRIP = "P mmap a\nP write a v1\nP mprotect a ro\nP mprotect a rw\nP write a v2\n"


def test_a_new_era_is_one_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walkthrough of the package docstring: drop one module in, nothing else changes."""
    (tmp_path / "e7_9.py").write_text(NEW_ERA)
    monkeypatch.setattr(engine.policies, "__path__", [*engine.policies.__path__, str(tmp_path)])
    try:
        eras = discover()
        assert list(eras)[-2:] == ["6.15", "7.9"]
        assert policy_for_kernel((7, 9), eras).id == "7.9"
        assert policy_for_kernel((7, 8), eras).id == "6.15"  # the old open range is cut
        new = eras["7.9"]
        assert isinstance(new, Policy)
        trace = replay(ROUND_TRIP, new)
        assert [e.rule for e in trace.steps[-2].events] == ["no write upgrade"]
        assert [e.kind for e in trace.steps[-1].events] == ["reuse", "write"]
        # The era it derives from still upgrades: only the one knob changed.
        assert [e.kind for e in replay(ROUND_TRIP, "6.15").steps[-1].events] == ["write"]
    finally:
        sys.modules.pop("engine.policies.e7_9", None)


def test_an_era_module_without_a_policy_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "e9_9.py").write_text('"""An era module that forgot its POLICY."""\n')
    monkeypatch.setattr(engine.policies, "__path__", [*engine.policies.__path__, str(tmp_path)])
    try:
        with pytest.raises(TypeError, match="e9_9 must define POLICY"):
            discover()
    finally:
        sys.modules.pop("engine.policies.e9_9", None)
