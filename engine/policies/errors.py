"""Errors of policy ids, shared by the era registry, the knobs and custom points."""

from __future__ import annotations


class UnknownPolicy(ValueError):
    """Raised for a policy id that is not one of `POLICIES` (nor the alias `latest`), or a
    custom point that cannot be built; callers answer it with exit status 2 or a 4xx."""


class RefusedCombination(UnknownPolicy):
    """A custom point whose knob choices contradict each other; the message names both."""
