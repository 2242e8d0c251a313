"""The built-in lessons and challenges (issue 12), shipped as data with the engine.

A lesson is a scenario with annotations (DESIGN.md §8), kept as a `.cow` file in this package so
a teacher reads and edits it as the text it is; the number in its file name orders the tour.
Every claim a lesson's notes make about an era is checked against the engine by
tests/engine/test_lessons.py, with expectations derived from kernel history.

Challenges are in `engine.lessons.challenges`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from engine.lessons.challenges import CHALLENGES, Challenge
from engine.syntax import parse

__all__ = ["CHALLENGES", "LESSONS", "Challenge", "LessonText"]


@dataclass(frozen=True, slots=True)
class LessonText:
    """A built-in lesson: ``name`` is its URL-safe slug, ``title`` and ``policy`` its `#title`
    and `#policy`, ``text`` the scenario with its annotations."""

    name: str
    title: str
    policy: str
    text: str


def _load() -> tuple[LessonText, ...]:
    lessons = []
    files = sorted(
        (f for f in resources.files(__name__).iterdir() if f.name.endswith(".cow")),
        key=lambda f: f.name,
    )
    for file in files:
        text = file.read_text(encoding="utf-8")
        annotations = parse(text).annotations
        # The file name is "NN-slug.cow": the slug is the lesson's name in links.
        name = file.name.removesuffix(".cow").split("-", 1)[1]
        if annotations.title is None or annotations.policy is None:
            raise ValueError(f"lesson {file.name} needs a #title and a #policy")
        lessons.append(LessonText(name, annotations.title, annotations.policy, text))
    return tuple(lessons)


LESSONS: Mapping[str, LessonText] = MappingProxyType({x.name: x for x in _load()})
"""Every built-in lesson by name, in teaching order."""
