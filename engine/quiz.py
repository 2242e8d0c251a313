"""The "which era?" quiz: what a scenario's reads observed, with the era hidden (issue 12).

From a seed the same ten questions come out in every process and every worker, so a class on one
link (`/quiz?seed=N`) sees one quiz. Each question takes a scenario (a preset or a built-in
lesson), replays it under every era, picks one era's observations to show, and its answer is
every era whose reads observe exactly those values: eras that agree on a scenario cannot be
told apart by it, and a learner who names only one of them is not right.

Pure: `random.Random(seed)` is the only randomness, and everything else is replay.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from engine.commands import Scenario
from engine.lesson import observation, read_steps
from engine.lessons import LESSONS
from engine.policies import POLICIES
from engine.presets import PRESETS
from engine.syntax import format_command, parse
from engine.trace import replay

__all__ = ["QUIZ_LENGTH", "Observation", "QuizQuestion", "quiz", "quiz_sources"]

QUIZ_LENGTH = 10


@dataclass(frozen=True, slots=True)
class Observation:
    step: int
    command: str
    value: str  # the observed text, or SIGSEGV


@dataclass(frozen=True, slots=True)
class QuizQuestion:
    """One question: a scenario (commands only: a teacher's notes could name the era), what its
    reads observed under the hidden era, and every era that observes exactly that."""

    number: int  # 1-based
    source: str  # the preset or lesson it comes from
    text: str  # the commands, `;`-joined as links carry them
    observations: tuple[Observation, ...]
    answer: tuple[str, ...]  # policy ids, in the order of POLICIES

    def check(self, eras: Iterable[str]) -> bool:
        """Whether ``eras`` names exactly the eras of the answer."""
        return set(eras) == set(self.answer)


def quiz_sources() -> tuple[tuple[str, str], ...]:
    """(name, scenario text) of every scenario a quiz may draw from, in a fixed order."""
    return tuple((p.name, p.text) for p in PRESETS.values()) + tuple(
        (f"lesson {lesson.name}", lesson.text) for lesson in LESSONS.values()
    )


def _observations(scenario: Scenario, policy_id: str) -> tuple[Observation, ...]:
    trace = replay(scenario, policy_id)
    return tuple(
        Observation(step, format_command(scenario.commands[step - 1]), observation(trace, step))
        for step in read_steps(scenario)
    )


def quiz(seed: int, length: int = QUIZ_LENGTH) -> tuple[QuizQuestion, ...]:
    """``length`` questions from ``seed``: the same questions for the same seed, forever.

    Only scenarios on which some eras differ are asked (a scenario every era agrees on has
    one answer, "all of them", and teaches nothing about eras); each scenario at most once.
    """
    rng = random.Random(seed)
    sources = list(quiz_sources())
    rng.shuffle(sources)
    questions: list[QuizQuestion] = []
    asked: set[str] = set()
    for name, text in sources:
        if len(questions) == length:
            break
        scenario = Scenario(parse(text).commands)
        commands = ";".join(format_command(cmd) for cmd in scenario.commands)
        # A lesson may retell a preset: the same commands are one question.
        if not read_steps(scenario) or commands in asked:
            continue
        asked.add(commands)
        seen = {policy_id: _observations(scenario, policy_id) for policy_id in POLICIES}
        if len(set(seen.values())) < 2:
            continue
        hidden = rng.choice(list(POLICIES))
        shown = seen[hidden]
        questions.append(
            QuizQuestion(
                number=len(questions) + 1,
                source=name,
                text=commands,
                observations=shown,
                answer=tuple(p for p in POLICIES if seen[p] == shown),
            )
        )
    return tuple(questions)
