"""Every preset on two kernels: Debian's Linux 6.1 in a VM and the running kernel (issue 25).

    python -m app.probe.kernels [--out docs/probe-kernels.md] [--timeout S]

Fetches Debian's `linux-image-6.1.0-N-cloud-amd64-unsigned` with `apt-get download` into the
cache (`~/.cache/cowlab/kernels`, reused; never installed), boots it under QEMU with every
preset's program (`app.probe.vm`), runs the same programs on this machine's kernel, and writes
the table: per preset and kernel, what the probe concluded and every era the program says the
kernel behaves like. tests/kernel/test_vm.py checks the same run: each kernel behaves like its
own era on every preset.
"""

from __future__ import annotations

import argparse
import fcntl
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from app.probe import capabilities, vm
from app.probe.compare import ProbeResult
from engine.presets import PRESETS
from engine.syntax import parse

DEBIAN_61 = re.compile(r"^linux-image-6\.1\.0-(\d+)-cloud-amd64-unsigned$")


def fetch_debian_61(cache: Path) -> Path:
    """Debian's newest 6.1 cloud kernel package, in ``cache`` (a .deb already there is used;
    concurrent callers, such as two test workers, wait for one download)."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _fetch_debian_61(cache)


def _fetch_debian_61(cache: Path) -> Path:
    have = sorted(cache.glob("linux-image-6.1.0-*-cloud-amd64-unsigned_*.deb"))
    if have:
        return have[-1]
    if shutil.which("apt-get") is None:
        raise vm.VMError("fetching Debian's 6.1 kernel needs apt-get (a Debian machine)")
    pattern = r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$"
    found = subprocess.run(
        ["apt-cache", "search", "--names-only", pattern], capture_output=True, text=True, timeout=60
    )
    names = [line.split(" ", 1)[0] for line in found.stdout.splitlines()]
    numbered = sorted((int(m.group(1)), n) for n in names if (m := DEBIAN_61.match(n)))
    if not numbered:
        raise vm.VMError("apt knows no linux-image-6.1.0-N-cloud-amd64-unsigned (apt-get update?)")
    done = subprocess.run(
        ["apt-get", "download", "-q", numbered[-1][1]], cwd=cache, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    have = sorted(cache.glob("linux-image-6.1.0-*-cloud-amd64-unsigned_*.deb"))
    if done.returncode != 0 or not have:
        raise vm.VMError(f"apt-get download {numbered[-1][1]} failed: {done.stderr.strip()[-300:]}")
    return have[-1]


@dataclass(frozen=True, slots=True)
class Column:
    """One kernel's results, preset by preset (in `PRESETS` order)."""

    kernel: str
    era: str
    how: str  # "QEMU TCG, zram swap" …
    results: tuple[ProbeResult | None, ...]  # None: compared by the program alone (native)
    runs: tuple[vm.ProgramRun, ...]


def run_vm(image: Path, timeout: float) -> tuple[Column, vm.VMRun]:
    scenarios = [(p.name, p.title, parse(p.text)) for p in PRESETS.values()]
    done = vm.probe_in_vm(scenarios, image, timeout=timeout)
    how = f"QEMU {done.boot.accel.upper()}, {done.report.swap.split(':')[0]}"
    column = Column(done.report.kernel, done.report.policy, how, done.report.results, done.programs)
    return column, done


def run_native(timeout: float) -> Column:
    from app.cexport.generate import program

    sources = [program(parse(p.text)) for p in PRESETS.values()]
    runs = vm.native_runs(sources, timeout)
    release = capabilities.kernel_release()
    how = f"this machine, {capabilities.describe_swap(paths=False)}"
    return Column(release, capabilities.policy_for(release), how, (None,) * len(runs), tuple(runs))


def status(column: Column, i: int) -> str:
    """What one program on one kernel concluded, in the probe's words."""
    run, result = column.runs[i], column.results[i]
    if result is not None:
        return result.status
    if run.status == 1 or re.search(r"^not ok ", run.output, re.MULTILINE):
        return "disagree"
    if run.status != 0:
        return f"failed ({run.status})"
    return "skipped" if re.search(r"^# skipped from step", run.output, re.MULTILINE) else "agree"


def own_era_kept(column: Column, i: int) -> bool:
    """Whether the kernel behaves like its own era on preset ``i``: the program ended, nothing
    disagreed, and its era is among those it behaves like (a program that told no era apart,
    skipped before any observation, lists none)."""
    like = column.runs[i].behaves_like
    return status(column, i) in ("agree", "skipped") and (like is None or column.era in like)


def table(columns: list[Column]) -> str:
    names = list(PRESETS)
    out = [
        "# Every preset on two kernels",
        "",
        "Written by `python -m app.probe.kernels --out docs/probe-kernels.md` (issue 25): each",
        "preset's `cowlab export c` program, built static, run on each kernel. *Status* is the",
        "probe's verdict against the simulator under the kernel's era; *behaves like* lists every",
        "era whose expectations equal what the kernel did (on the steps that ran; none when the",
        "program skipped before it observed anything). ✓ marks the kernel's own era among them.",
        "",
    ]
    for column in columns:
        kept = sum(own_era_kept(column, i) for i in range(len(names)))
        counts = {
            s: sum(status(column, i) == s for i in range(len(names)))
            for s in ("agree", "disagree", "skipped")
        }
        out.append(
            f"- **{column.kernel}** → era **{column.era}** ({column.how}): "
            f"{counts['agree']} agree, {counts['disagree']} disagree, {counts['skipped']} "
            f"skipped; behaves like its era on {kept} of {len(names)} presets."
        )
    out += ["", "| preset | " + " | ".join(f"{c.kernel} (era {c.era})" for c in columns) + " |"]
    out.append("|---" * (len(columns) + 1) + "|")
    for i, name in enumerate(names):
        cells = []
        for column in columns:
            like = column.runs[i].behaves_like
            mark = "✓ " if own_era_kept(column, i) else "✗ "
            shown = " ".join(like) if like else "—"
            cells.append(f"{mark}{status(column, i)}: {shown}")
        out.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.probe.kernels", description=__doc__)
    parser.add_argument("--out", type=Path, help="write the table here (default: stdout)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per program, seconds")
    args = parser.parse_args(argv)
    try:
        image = fetch_debian_61(vm.default_cache() / "kernels")
        column, done = run_vm(image, args.timeout)
    except vm.VMError as err:
        print(f"cowlab: {err}", file=sys.stderr)
        return 2
    text = table([column, run_native(args.timeout)])
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    print(
        f"VM: {done.boot.accel}, first program's output {done.boot.boot_s:.1f} s after QEMU "
        f"started, all {len(PRESETS)} presets {done.boot.total_s:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
