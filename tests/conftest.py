"""Settings every test module shares."""

from __future__ import annotations

from hypothesis import settings

# Hypothesis' per-example deadline (200 ms) is a timing assertion: on a 2-core machine shared
# with other jobs an example of a correct test took 486 ms and failed. Speed is `cowlab bench`'s
# to judge (DESIGN.md §7), so examples here are judged on behaviour only.
settings.register_profile("cowlab", deadline=None)
settings.load_profile("cowlab")
