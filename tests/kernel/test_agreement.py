"""The simulator, under the policy of this machine's kernel, against the kernel itself.

These run real processes, pages, pipes and io_uring rings on the CI machine's kernel (see
docs/probe.md). The selftest scenarios that need nothing optional — basic COW, the vmsplice
tests 3–6 of tools/testing/selftests/mm/cow.c and their mprotect() variants — must run here and
agree; every other preset must agree or be skipped with a reason.
"""

from __future__ import annotations

import pytest

from app.probe.capabilities import kernel_release, policy_for
from app.probe.compare import ProbeResult, probe_scenario
from engine.presets import PRESETS
from engine.syntax import parse

pytestmark = pytest.mark.kernel

# cow.c test number -> preset, and what the selftest's PASS criterion reads on a fixed kernel.
MUST_AGREE = {
    "cow-basic": {4: "v1", 6: "v1"},  # 1: no leak from parent into child
    "cow-basic-mprotect": {4: "v1", 8: "v1"},  # 2: ... with mprotect() optimization
    "cow-vmsplice-unmap-child": {4: "v1", 8: "v1"},  # 3 (CVE-2020-29374)
    "cow-vmsplice-unmap-child-mprotect": {4: "v1", 10: "v1"},  # 4
    "cow-vmsplice-before-fork": {3: "v1", 9: "v1"},  # 5: no leak from child into parent
    "cow-vmsplice-unmap-parent": {3: "v1", 9: "v1"},  # 6
    "cve-2020-29374": {7: "BORING-DATA"},
    "cow-zeropage-basic": {3: "0", 4: "0", 6: "0"},  # 19 with shared zeropage
    "cow-memfd-basic": {4: "file-data", 5: "file-data", 7: "file-data"},  # 19 with memfd
}


def _probe(name: str) -> ProbeResult:
    preset = PRESETS[name]
    return probe_scenario(parse(preset.text), name=name, title=preset.title)


def _describe(result: ProbeResult) -> str:
    return (
        f"kernel {[(o.step, o.value) for o in result.kernel_observed]} vs simulator "
        f"{[(o.step, o.value) for o in result.sim_observed]} (skipped: {result.skipped})"
    )


@pytest.mark.parametrize("name", sorted(MUST_AGREE))
def test_selftest_scenario_runs_and_agrees_with_this_kernels_policy(name: str) -> None:
    result = _probe(name)
    assert result.skipped is None, result.skipped
    assert result.agree, _describe(result)
    # The kernel really read the selftest's expected bytes (not two matching failures).
    assert {o.step: o.value for o in result.kernel_observed} == MUST_AGREE[name]


def test_the_probe_uses_the_policy_of_this_kernel() -> None:
    # 6.18 here: the latest era. The test still holds on another CI kernel.
    assert policy_for(kernel_release()) in {"5.9", "5.18", "5.19", "6.2", "6.13", "6.15"}


@pytest.mark.parametrize("name", sorted(set(PRESETS) - set(MUST_AGREE)))
def test_every_other_preset_agrees_or_says_why_it_was_skipped(name: str) -> None:
    result = _probe(name)
    if result.skipped is not None:
        assert result.skipped.strip(), "a skip must carry its reason"
        return
    assert result.agree, _describe(result)
