"""The heading of the simulator page: the scenario's `#title`, and a preset's story.

A preset opened from `/presets` is a story a teacher tells: the page names it and says what
happens before the first step, so a class knows what to watch for. A scenario without a
`#title` gets a plain heading (every page has one `<h1>`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from app.views.runs import Run, lesson_policy
from engine.presets import PRESETS, Preset
from engine.verdicts import Verdict

PLAIN_TITLE = "Copy-on-write simulator"


@dataclass(frozen=True, slots=True)
class ScenarioHead:
    title: str
    story: str  # empty unless the title is a preset's
    source: str
    named: bool  # the scenario has a `#title` (else `title` is `PLAIN_TITLE`)


@cache
def _presets_by_title() -> dict[str, Preset]:
    return {preset.title: preset for preset in PRESETS.values()}


def scenario_head(r: Run) -> ScenarioHead:
    title = r.scenario.annotations.title
    if not title:
        return ScenarioHead(PLAIN_TITLE, "", "", named=False)
    preset = _presets_by_title().get(title)
    if preset is None:
        return ScenarioHead(title, "", "", named=True)
    return ScenarioHead(title, preset.story, preset.source, named=True)


def story_era(preset: Preset, verdicts_by_era: dict[str, tuple[Verdict, ...]]) -> str:
    """The era a preset's story happens in: the one its `#policy` names, else the first era
    (oldest first) with a verdict, else the newest: where the bug, or the fix, shows."""
    named = lesson_policy(preset.text)
    if named and named != "latest":
        return named
    for era, verdicts in verdicts_by_era.items():
        if verdicts:
            return era
    return next(reversed(verdicts_by_era))
