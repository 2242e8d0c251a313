"""Every preset on Debian's Linux 6.1, booted under QEMU, and on the running kernel (issue 25).

One boot runs every preset's static program (`cowlab probe --kernel`, `app.probe.vm`); the
kernel image is Debian's `linux-image-6.1.0-N-cloud-amd64-unsigned`, fetched once with
`apt-get download` into ~/.cache/cowlab/kernels and reused. Each kernel must behave like its own
era on every preset: 6.1 like 5.19, this machine's kernel like the era its version maps to.
Skipped only where QEMU cannot run at all (not installed: scripts/test installs it).
"""

from __future__ import annotations

import shutil

import pytest

from app.probe import vm
from app.probe.kernels import Column, fetch_debian_61, own_era_kept, run_native, run_vm, status
from engine.presets import PRESETS

# One worker runs both: they build the same 71 static programs (cached by digest), once.
pytestmark = [pytest.mark.kernel, pytest.mark.xdist_group("tests/kernel/test_vm.py")]

needs_qemu = pytest.mark.skipif(
    shutil.which(vm.QEMU) is None or not vm.BUSYBOX.is_file(),
    reason=f"{vm.QEMU} or {vm.BUSYBOX} missing: Debian's qemu-system-x86 and busybox-static",
)


def _not_own_era(column: Column) -> list[str]:
    return [
        f"{name}: {status(column, i)}, behaves like {column.runs[i].behaves_like}\n"
        f"{column.runs[i].output[-600:]}"
        for i, name in enumerate(PRESETS)
        if not own_era_kept(column, i)
    ]


@needs_qemu
def test_debian_61_in_a_vm_behaves_like_its_era_on_every_preset() -> None:
    image = fetch_debian_61(vm.default_cache() / "kernels")
    column, done = run_vm(image, timeout=10.0)
    assert column.kernel.startswith("6.1.") and column.era == "5.19"
    assert done.report.swap.startswith("#swap zram"), done.report.swap
    assert _not_own_era(column) == []
    statuses = {name: status(column, i) for i, name in enumerate(PRESETS)}
    assert "disagree" not in statuses.values()
    # What the host never offers, the VM does: a hugetlb pool, THP, a zram swap device.
    for name in ("cow-basic-hugetlb", "cow-basic-thp", "cow-vmsplice-unmap-child-swap"):
        assert statuses[name] == "agree", (name, done.programs[list(PRESETS).index(name)])
    assert sum(s == "agree" for s in statuses.values()) > len(PRESETS) // 2


def test_the_running_kernel_behaves_like_its_era_on_every_preset() -> None:
    column = run_native(timeout=10.0)
    assert _not_own_era(column) == []
    assert any(status(column, i) == "agree" for i in range(len(PRESETS)))
