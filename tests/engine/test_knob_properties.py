"""The accounting laws hold at every runnable point of the knob space, not only at the eras: the
stateful machine of test_properties.py, started under a random custom point. A combination that
broke them would belong in `REFUSALS`."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize

from engine import commands as c
from engine.policies import POLICIES, get_policy
from engine.policies.knobs import KNOBS
from engine.state import empty_state
from engine.sweep import refused
from tests.engine.test_properties import PAGES, Kernel

settings_st = st.fixed_dictionaries(
    {k: st.sampled_from([ch.id for ch in knob.choices]) for k, knob in KNOBS.items()}
).filter(lambda s: not refused(s))
SEEN: set[str] = set()


class CustomPointKernel(Kernel):
    @initialize(knobs=settings_st, with_file=st.booleans())
    def start(self, knobs: dict[str, str], with_file: bool) -> None:
        spelled = "custom:" + ",".join(["base=5.7", *(f"{k}={v}" for k, v in knobs.items())])
        self.policy = get_policy(spelled)
        SEEN.add(self.policy.id)
        self.state = empty_state()
        self.states = [self.state]
        self.run(c.Mmap("P", PAGES))
        if with_file:
            self.run(c.FileDecl("F", "f0"))
            self.run(c.Mmap("D", ("a",), file="F"))
            self.run(c.Mmap("D", ("b",), file="F", shared=True))


CustomPointKernel.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None
)
TestCustomPointInvariants = CustomPointKernel.TestCase


def test_the_machine_above_ran_many_distinct_points() -> None:
    """Guards the override of ``start``: the inherited era-only start would give at most nine."""
    if not SEEN:
        TestCustomPointInvariants().runTest()
    assert len(SEEN) > 2 * len(POLICIES)
