"""`cowlab bench --vm`: another kernel under QEMU TCG, every preset in one boot (issue 25).

``vm_boot_s``: QEMU started to the first line of the first program (the kernel's boot and
/init's setup: the hugetlb pool, THP, the zram swap device). ``vm_presets_s``: QEMU started to
its exit, every preset's program run. The kernel is Debian's 6.1 cloud image
(`app.probe.kernels.fetch_debian_61`, cached); the programs are built before the clock starts
(and cached). TCG always, so the figure means the same on every machine. Without QEMU, or
without the package, the figures are absent and the reason is reported instead.
"""

from __future__ import annotations

from typing import Any

from app.probe import vm
from app.probe.kernels import fetch_debian_61
from engine.presets import PRESETS
from engine.syntax import parse


def measure_vm() -> dict[str, Any]:
    scenarios = [(p.name, p.title, parse(p.text)) for p in PRESETS.values()]
    try:
        image = fetch_debian_61(vm.default_cache() / "kernels")
        done = vm.probe_in_vm(scenarios, image, accel="tcg")
    except vm.VMError as err:
        return {"vm_unavailable": str(err)}
    return {
        "vm_kernel": done.report.kernel,
        "vm_boot_s": round(done.boot.boot_s, 1),
        "vm_presets_s": round(done.boot.total_s, 1),
        "vm_presets": len(scenarios),
    }
