"""Every commit id the engine cites is in the table of first mainline releases, and an era does
not claim a rule from before it existed without saying so."""

from __future__ import annotations

import re
from pathlib import Path

import engine
from engine.commits import COMMITS, release_text
from engine.policies import POLICIES
from engine.policies.knobs import KNOBS

ENGINE = Path(engine.__file__).parent
# A 12-digit abbreviated commit id, as the engine writes them (not part of a longer hex run).
COMMIT_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{12}(?![0-9a-f])")


def cited() -> dict[str, list[str]]:
    """Every commit id in the engine's source (the table itself aside), with where it is."""
    out: dict[str, list[str]] = {}
    for path in sorted(ENGINE.rglob("*.py")):
        if path.name == "commits.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for commit in COMMIT_ID.findall(line):
                # Hex runs that are not commits (digests, addresses) would have digits only
                # or letters only rarely; every match here must be in the table.
                out.setdefault(commit, []).append(f"{path.relative_to(ENGINE)}:{n}")
    return out


def test_every_cited_commit_is_in_the_table() -> None:
    found = cited()
    assert len(found) > 30
    missing = {c: where[:2] for c, where in found.items() if c not in COMMITS}
    assert not missing, missing


def test_the_table_lists_only_cited_commits() -> None:
    unused = set(COMMITS) - set(cited())
    assert not unused, f"listed but never cited: {sorted(unused)}"


def test_every_choice_and_era_commit_is_known() -> None:
    for knob in KNOBS.values():
        for choice in knob.choices:
            if COMMIT_ID.fullmatch(choice.commit):
                assert choice.commit in COMMITS, (knob.id, choice.id)
    for era in POLICIES.values():
        for commit in era.commits:
            assert commit in COMMITS, (era.id, commit)


def test_an_era_never_claims_a_commit_released_after_it() -> None:
    for era in POLICIES.values():
        for commit in era.commits:
            release = COMMITS[commit].release
            if era.until is not None:
                assert release[:2] <= era.until, (era.id, commit, release)


def test_an_era_that_models_a_later_commit_says_so() -> None:
    """An era whose first kernel predates a commit it models names the commit and the release
    it first appeared in (5.9 models 5.11's feb889fb40fa, 5.19 models 6.0's 5535be309971 and
    64fe24a3e05e) rather than claiming the rule from its first kernel on."""
    for era in POLICIES.values():
        # A proposal is no kernel; an era from the beginning ((0, 0)) has no first kernel.
        if not era.merged or era.since == (0, 0):
            continue
        for commit in era.commits:
            release = COMMITS[commit].release
            if release[:2] > era.since:
                assert commit in era.story and release_text(release) in era.story, (
                    era.id,
                    commit,
                    release_text(release),
                )


def test_the_clean_exclusive_upgrade_cites_its_own_commit() -> None:
    choice = KNOBS["mprotect_upgrade"].choice("clean-exclusive")
    assert choice.commit == "d84887739d5c"
    assert COMMITS["d84887739d5c"].release == (6, 2)
