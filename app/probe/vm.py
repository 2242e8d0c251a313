"""`cowlab probe --kernel IMAGE`: the scenarios' C programs on another kernel, in a VM (§12).

Every era but the running kernel's rests on reading source; this boots any x86-64 kernel image
(a distribution package's vmlinuz, /boot's, a self-built bzImage) under QEMU and runs the
scenarios there, as `cowlab export c` writes them, built static. One boot runs them all:

- `build_programs`: each scenario's program, compiled with gcc `-static` once per source text
  (kept in a cache directory keyed by the source's and the compiler's digest).
- `initramfs`: a cpio "newc" archive holding Debian's busybox-static, the programs, the kernel
  modules a swap device needs, and an `/init` that mounts proc, sysfs, devtmpfs and debugfs,
  fills the hugetlb pool, sets the THP mode, makes a swap device (zram from the image's modules,
  or a virtio disk), runs each program under a hard timeout and powers off.
- `boot`: QEMU with KVM when it really works here (`/dev/kvm` can exist while `-cpu host`
  aborts: it is tried, and TCG taken when it fails), TCG otherwise; the kernel's console and the
  programs' output on two serial ports, files in a scratch directory; QEMU killed on any way out.
- `probe_in_vm`: the report of `cowlab probe --json`, with the VM's release and its era, each
  scenario compared as the probe compares (`compare.verdict`).

Nothing on the host changes: everything lives in a temporary directory, and the VM sees no host
file but its initramfs and, for `--swap file`, a scratch disk image.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import lzma
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from app.cexport.generate import program
from app.probe import capabilities
from app.probe.compare import (
    Observation,
    ProbeReport,
    ProbeResult,
    on_swap_device,
    swap_mismatch,
    verdict,
)
from engine import commands as c
from engine.syntax import format_command
from engine.trace import replay

QEMU = "qemu-system-x86_64"
KVM_DEVICE = "/dev/kvm"
BUSYBOX = Path("/usr/bin/busybox")
CC = "gcc"
CFLAGS = ("-static", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror")
MEMORY_MIB = 1024
HUGETLB_PAGES = 16  # 2 MiB each: more than any scenario maps at once
ZRAM_SIZE = "256M"
SWAP_DISK_MIB = 256
BOOT_TIMEOUT_S = 120.0  # TCG boots a distribution kernel in ~10 s; a loaded machine, slower
GRACE_S = 10.0  # a program's hard limit past its own deadline
MARK = "@@cowlab"

SwapKind = Literal["zram", "file", "none"]


class VMError(Exception):
    """The VM could not be set up or did not answer; the message says what to do."""


def check_tools() -> None:
    """Refuse early, naming the Debian package, when the VM cannot be built or booted."""
    if shutil.which(QEMU) is None:
        raise VMError(f"booting another kernel needs QEMU ({QEMU}: Debian's qemu-system-x86)")
    if not BUSYBOX.is_file():
        raise VMError(f"the VM's userland is Debian's busybox-static ({BUSYBOX} is missing)")
    if shutil.which(CC) is None:
        raise VMError(f"building the scenarios' programs needs a C compiler ({CC}: Debian's gcc)")


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cowlab"


# ----------------------------------------------------------------------------- the kernel
@dataclass(frozen=True, slots=True)
class Kernel:
    image: Path  # vmlinuz / bzImage
    modules: Path | None  # lib/modules/RELEASE of the same build, when known


def _unpack_deb(deb: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    if shutil.which("dpkg-deb") is None:
        raise VMError(f"{deb}: unpacking a .deb needs dpkg-deb (Debian's dpkg)")
    done = subprocess.run(
        ["dpkg-deb", "-x", str(deb), str(into)], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise VMError(f"{deb}: dpkg-deb -x failed: {done.stderr.strip()[:300]}")
    return into


def _module_dirs(root: Path) -> list[Path]:
    base = root / "lib" / "modules"
    if not base.is_dir():
        base = root / "usr" / "lib" / "modules"  # merged-/usr packages
    return sorted(p for p in base.glob("*") if p.is_dir()) if base.is_dir() else []


def locate_kernel(image: Path, modules: Path | None, scratch: Path) -> Kernel:
    """The image to boot and its modules. ``image`` may be a kernel image or a linux-image
    .deb (unpacked, never installed); ``modules`` a lib/modules/RELEASE directory, a root
    holding lib/modules, or a .deb. Without ``modules``, an image found at ROOT/boot/vmlinuz-R
    takes ROOT/lib/modules/R when it is there (an unpacked package, or this machine's /boot)."""
    if not image.is_file():
        raise VMError(f"{image}: no such kernel image")
    if image.suffix == ".deb":
        root = _unpack_deb(image, scratch / "image")
        found = sorted((root / "boot").glob("vmlinuz-*"))
        if not found:
            raise VMError(f"{image}: the package holds no boot/vmlinuz-*")
        image = found[-1]
    if modules is None:
        release = image.name.removeprefix("vmlinuz-")
        if image.parent.name == "boot" and release != image.name:
            candidates = [d for d in _module_dirs(image.parent.parent) if d.name == release]
            modules = candidates[0] if candidates else None
        return Kernel(image, modules)
    if not modules.exists():
        raise VMError(f"{modules}: no such module directory or package")
    if modules.suffix == ".deb":
        modules = _unpack_deb(modules, scratch / "modules")
    if (modules / "kernel").is_dir() or (modules / "modules.order").is_file():
        return Kernel(image, modules)
    dirs = _module_dirs(modules)
    if len(dirs) != 1:
        raise VMError(f"{modules}: expected one lib/modules/RELEASE inside, found {len(dirs)}")
    return Kernel(image, dirs[0])


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(data)
    return data


def _depends(module: bytes) -> tuple[str, ...]:
    # The .modinfo section holds NUL-terminated "key=value" strings; depmod reads "depends=".
    match = re.search(rb"\x00depends=([^\x00]*)\x00", module)
    if match is None or not match.group(1):
        return ()
    return tuple(d.replace("-", "_") for d in match.group(1).decode().split(","))


def modules_for(modules: Path, wanted: Iterable[str]) -> list[tuple[str, bytes]]:
    """The ``wanted`` modules found in ``modules`` with what they depend on, dependencies first
    (the order insmod needs; there is no modprobe in the VM). Names that are not modules there
    are left out: built into the kernel, or absent, which the VM finds out."""
    index: dict[str, Path] = {}
    for path in modules.rglob("*.ko*"):
        if re.search(r"\.ko(\.xz|\.gz)?$", path.name):
            index.setdefault(_module_name(path), path)
    order: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name not in index:
            return
        seen.add(name)
        data = _module_bytes(index[name])
        for dependency in _depends(data):
            visit(dependency)
        order.append((name, data))

    for name in wanted:
        visit(name.replace("-", "_"))
    return order


# zram compresses through the crypto API, which asks modprobe for its default algorithm
# (lzo-rle) and there is no modprobe in the VM: the compressors are loaded by name.
SWAP_MODULES: dict[SwapKind, tuple[str, ...]] = {
    "zram": ("lzo", "lzo_rle", "zram"),
    "file": ("virtio_pci", "virtio_blk"),
    "none": (),
}


# ----------------------------------------------------------------------------- the programs
def _compiler_id() -> str:
    if shutil.which(CC) is None:
        raise VMError(f"building the scenarios' programs needs a C compiler ({CC}: Debian's gcc)")
    return subprocess.run([CC, "--version"], capture_output=True, text=True, timeout=30).stdout


def build_programs(sources: list[str], cache: Path, jobs: int = 2) -> list[Path]:
    """Each C source compiled static (`CFLAGS`), in ``cache`` under its digest: a source built
    once is not built again. At most ``jobs`` compilers at once."""
    compiler = _compiler_id()
    cache.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    pending: list[tuple[Path, str]] = []
    for source in sources:
        digest = hashlib.sha256(f"{compiler}\0{CFLAGS}\0{source}".encode()).hexdigest()[:32]
        path = cache / f"{digest}.bin"
        paths.append(path)
        if not path.exists() and all(p != path for p, _ in pending):
            pending.append((path, source))
    running: list[tuple[subprocess.Popen[bytes], Path, Path]] = []

    def finish(proc: subprocess.Popen[bytes], out: Path, part: Path) -> None:
        _, err = proc.communicate(timeout=300)
        part.with_suffix(".c").unlink(missing_ok=True)
        if proc.returncode != 0:
            part.unlink(missing_ok=True)
            raise VMError(f"gcc refused a scenario's program: {err.decode()[-600:]}")
        part.replace(out)

    try:
        for out, source in pending:
            part = out.with_name(f"{out.stem}.{os.getpid()}.part")
            part.with_suffix(".c").write_text(source, encoding="utf-8")
            cmd = [CC, *CFLAGS, "-o", str(part), str(part.with_suffix(".c"))]
            running.append((subprocess.Popen(cmd, stderr=subprocess.PIPE), out, part))
            if len(running) >= jobs:
                finish(*running.pop(0))
        while running:
            finish(*running.pop(0))
    finally:
        for proc, _, part in running:
            proc.kill()
            proc.wait()
            part.unlink(missing_ok=True)
            part.with_suffix(".c").unlink(missing_ok=True)
    return paths


# ----------------------------------------------------------------------------- the initramfs
class _Cpio:
    """A cpio "newc" archive, the format the kernel unpacks as an initramfs."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._ino = 1

    def _entry(
        self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
    ) -> None:
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, *rdev, len(encoded), 0)
        header = b"070701" + b"".join(b"%08x" % f for f in fields)
        self._ino += 1
        self._out.write(header + encoded + b"\0" * (-(len(header) + len(encoded)) % 4))
        self._out.write(data + b"\0" * (-len(data) % 4))

    def directory(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o755) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def char_device(self, name: str, major: int, minor: int) -> None:
        self._entry(name, 0o020600, rdev=(major, minor))

    def close(self) -> None:
        self._entry("TRAILER!!!", 0)


def init_script(count: int, timeout: float, swap: SwapKind, modules: list[str]) -> str:
    """The VM's /init: set up what the scenarios need, run programs /p/0 … /p/COUNT-1 (each
    with its own ``timeout`` and a hard kill after `GRACE_S` more), report on the second serial
    port, power off."""
    hard = int(timeout + GRACE_S)
    insmods = "".join(f"insmod /lib/cowlab/{m}.ko 2>/dev/null\n" for m in modules)
    if swap == "zram":
        device = (
            "if [ -e /sys/block/zram0/disksize ]; then\n"
            f"  echo {ZRAM_SIZE} > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null"
            " && swapon /dev/zram0\n"
            "fi\n"
        )
    elif swap == "file":
        device = "[ -b /dev/vda ] && mkswap /dev/vda >/dev/null && swapon /dev/vda\n"
    else:
        device = ""
    return (
        "#!/bin/sh\n"
        "mount -t proc proc /proc\n"
        "mount -t sysfs sysfs /sys\n"
        "mount -t devtmpfs devtmpfs /dev\n"
        "mount -t tmpfs tmpfs /tmp\n"
        "mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null\n"
        "exec 3>/dev/ttyS1\n"
        f'echo "{MARK} release $(uname -r)" >&3\n'
        f"echo {HUGETLB_PAGES} > /proc/sys/vm/nr_hugepages\n"
        # The scenarios ask for THPs with MADV_HUGEPAGE, as the selftests do.
        "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null\n"
        "echo madvise > /sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null\n"
        f"{insmods}{device}"
        f'echo "{MARK} swaps" >&3\n'
        "cat /proc/swaps >&3\n"
        f'echo "{MARK} programs" >&3\n'
        "i=0\n"
        f"while [ $i -lt {count} ]; do\n"
        f'  echo "{MARK} run $i" >&3\n'
        f"  timeout -s KILL {hard} /p/$i {timeout:g} >&3 2>&3 </dev/null\n"
        f'  echo "{MARK} exit $i $?" >&3\n'
        "  i=$((i + 1))\n"
        "done\n"
        f'echo "{MARK} done" >&3\n'
        "sync\n"
        "poweroff -f\n"
    )


def initramfs(
    out: Path,
    programs: list[Path],
    timeout: float,
    swap: SwapKind,
    modules: list[tuple[str, bytes]],
) -> None:
    if not BUSYBOX.is_file():
        raise VMError(f"the VM's userland is Debian's busybox-static ({BUSYBOX} is missing)")
    with out.open("wb") as f:
        cpio = _Cpio(f)
        for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/cowlab", "p"):
            cpio.directory(d)
        cpio.char_device("dev/console", 5, 1)
        cpio.file("bin/busybox", BUSYBOX.read_bytes())
        for applet in ("sh", "mount", "echo", "cat", "insmod", "mkswap", "swapon", "timeout"):
            cpio.symlink(f"bin/{applet}", "busybox")
        cpio.symlink("bin/uname", "busybox")
        cpio.symlink("bin/sync", "busybox")
        cpio.symlink("bin/poweroff", "busybox")
        for name, data in modules:
            cpio.file(f"lib/cowlab/{name}.ko", data, 0o644)
        names = [name for name, _ in modules]
        cpio.file("init", init_script(len(programs), timeout, swap, names).encode())
        for i, path in enumerate(programs):
            cpio.file(f"p/{i}", path.read_bytes())
        cpio.close()


# ----------------------------------------------------------------------------- the boot
@dataclass(frozen=True, slots=True)
class Boot:
    output: str  # what /init and the programs wrote to the second serial port
    console: str  # the kernel's console (first serial port)
    accel: str  # "kvm" or "tcg"
    boot_s: float  # QEMU start to the first program's first line (or to the end)
    total_s: float


_kvm_failed = False  # KVM was tried in this process and did not work: TCG from then on


def _qemu_command(
    kernel: Path, initrd: Path, accel: str, disk: Path | None, out: Path, console: Path
) -> list[str]:
    cpu = ["-accel", "kvm", "-cpu", "host"] if accel == "kvm" else ["-accel", "tcg", "-cpu", "max"]
    drive = ["-drive", f"file={disk},if=virtio,format=raw"] if disk is not None else []
    return [
        QEMU, *cpu, "-m", str(MEMORY_MIB), "-smp", "1", "-nodefaults", "-no-user-config",
        "-display", "none", "-no-reboot", "-monitor", "none",
        "-serial", f"file:{console}", "-serial", f"file:{out}",
        "-kernel", str(kernel), "-initrd", str(initrd), *drive,
        "-append", "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init",
    ]  # fmt: skip


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace").replace("\r", "")
    except FileNotFoundError:
        return ""


def _run_qemu(
    cmd: list[str], out: Path, deadline: Callable[[str], float], log: Path
) -> tuple[str, float, bool]:
    """Run QEMU until it exits or the deadline (a function of what the VM wrote so far) passes;
    (output, seconds to the first program's output, whether it exited on its own)."""
    start = time.monotonic()
    first: float | None = None
    with log.open("wb") as err:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True
        )
    try:
        while True:
            exited = proc.poll() is not None
            text = _read(out)
            if first is None and re.search(rf"^{MARK} run 0\n.+\n", text, re.MULTILINE):
                first = time.monotonic() - start
            if exited:
                return text, first if first is not None else time.monotonic() - start, True
            if "KVM internal error" in _read(log) or time.monotonic() - start > deadline(text):
                return text, first if first is not None else time.monotonic() - start, False
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def boot(
    kernel: Path,
    initrd: Path,
    scratch: Path,
    *,
    count: int,
    timeout: float,
    disk: Path | None = None,
    accel: Literal["auto", "tcg"] = "auto",
) -> Boot:
    """Boot ``kernel`` with ``initrd`` and wait for /init's programs, within a bound: the boot
    itself, then each program's hard limit. ``accel`` "tcg" never tries KVM (`cowlab bench`
    measures TCG, the one path every machine has)."""
    global _kvm_failed
    if shutil.which(QEMU) is None:
        raise VMError(f"booting another kernel needs QEMU ({QEMU}: Debian's qemu-system-x86)")
    per_program = timeout + GRACE_S + 5.0

    def deadline(text: str) -> float:
        # A kernel that never reaches /init is given up on after the boot's own bound.
        if f"{MARK} release" not in text:
            return BOOT_TIMEOUT_S
        return BOOT_TIMEOUT_S + per_program * max(count, 1)

    usable = accel == "auto" and not _kvm_failed and os.access(KVM_DEVICE, os.R_OK | os.W_OK)
    for tried in ("kvm", "tcg") if usable else ("tcg",):
        out, console = scratch / f"out-{tried}", scratch / f"console-{tried}"
        log = scratch / f"qemu-{tried}.log"
        start = time.monotonic()
        cmd = _qemu_command(kernel, initrd, tried, disk, out, console)
        text, first, exited = _run_qemu(cmd, out, deadline, log)
        total = time.monotonic() - start
        if tried == "kvm" and f"{MARK} release" not in text:
            _kvm_failed = True  # e.g. `-cpu host` aborts on an MSR this host's KVM refuses
            continue
        if f"{MARK} done" not in text:
            tail = (_read(console).strip() or _read(log).strip())[-800:]
            why = "did not finish in time" if not exited else "stopped before its programs finished"
            raise VMError(f"the VM ({kernel.name}, {tried}) {why}; its console ended with:\n{tail}")
        return Boot(text, _read(console), tried, first, total)
    raise AssertionError("unreachable: TCG is always tried")


# ----------------------------------------------------------------------------- the report
# A program's list of eras; a run cut short that told none apart prints "# behaves like no era in
# particular: …" instead, which this does not match.
BEHAVES_LIKE = r"^# behaves like(?: \(on the steps that ran\))?:(.*)$"


@dataclass(frozen=True, slots=True)
class ProgramRun:
    output: str
    status: int | None  # the exit status, None when /init never reported one

    @property
    def behaves_like(self) -> tuple[str, ...] | None:
        match = re.search(BEHAVES_LIKE, self.output, re.MULTILINE)
        return tuple(match.group(1).split()) if match else None


@dataclass(frozen=True, slots=True)
class VMRun:
    report: ProbeReport
    programs: tuple[ProgramRun, ...]
    boot: Boot


def split_output(text: str, count: int) -> tuple[str, str, list[ProgramRun]]:
    """(release, /proc/swaps, each program's run) from /init's report."""
    release = re.search(rf"^{MARK} release (\S+)$", text, re.MULTILINE)
    swaps = re.search(rf"^{MARK} swaps\n(.*?)^{MARK} programs$", text, re.MULTILINE | re.DOTALL)
    runs = []
    for i in range(count):
        body = re.search(
            rf"^{MARK} run {i}\n(.*?)^{MARK} exit {i} (\d+)$", text, re.MULTILINE | re.DOTALL
        )
        runs.append(ProgramRun(body.group(1), int(body.group(2))) if body else ProgramRun("", None))
    if release is None:
        raise VMError("the VM never reported its kernel release")
    return release.group(1), swaps.group(1) if swaps else "", runs


def observations(
    scenario: c.Scenario, run: ProgramRun, timeout: float
) -> tuple[tuple[Observation, ...], int, str | None]:
    """What a program observed, how many steps it ran, and why it stopped early (None when it
    ran every step), from its `observed STEP VALUE` and `# skipped from step K: WHY` lines."""
    out = []
    for match in re.finditer(r"^observed (\d+) (.+)$", run.output, re.MULTILINE):
        step = int(match.group(1))
        if 1 <= step <= len(scenario.commands):
            out.append(
                Observation(step, format_command(scenario.commands[step - 1]), match.group(2))
            )
    n = len(scenario.commands)
    skipped = re.search(r"^# skipped from step (\d+): (.+)$", run.output, re.MULTILINE)
    if skipped is not None:
        return tuple(out), int(skipped.group(1)) - 1, skipped.group(2)
    # Exit status 1: the kernel contradicted its era, which the comparison shows too.
    if run.status not in (0, 1) or not re.search(r"^# behaves like", run.output, re.MULTILINE):
        ran = max((o.step for o in out), default=0)
        why = "killed" if run.status in (None, 137) else f"exit status {run.status}"
        return (
            tuple(out),
            ran,
            f"the program did not finish in the VM ({why}, limit {timeout + GRACE_S:g} s)",
        )
    return tuple(out), n, None


def probe_in_vm(
    scenarios: list[tuple[str, str, c.Scenario]],
    image: Path,
    *,
    modules: Path | None = None,
    swap: SwapKind = "zram",
    timeout: float = 10.0,
    cache: Path | None = None,
    accel: Literal["auto", "tcg"] = "auto",
) -> VMRun:
    """Run ``scenarios`` ((name, title, scenario)) in one boot of ``image`` and compare each
    with the simulator under the era of the VM's kernel."""
    cache = cache or default_cache()
    check_tools()
    with tempfile.TemporaryDirectory(prefix="cowlab-vm-") as tmp:
        scratch = Path(tmp)
        kernel = locate_kernel(image, modules, scratch)
        wanted = SWAP_MODULES[swap]
        loaded = modules_for(kernel.modules, wanted) if kernel.modules is not None else []
        binaries = build_programs([program(s) for _, _, s in scenarios], cache / "programs")
        initrd = scratch / "initrd.cpio"
        initramfs(initrd, binaries, timeout, swap, loaded)
        disk = None
        if swap == "file":
            disk = scratch / "swap.img"
            with disk.open("wb") as f:
                f.truncate(SWAP_DISK_MIB << 20)
        booted = boot(
            kernel.image,
            initrd,
            scratch,
            count=len(scenarios),
            timeout=timeout,
            disk=disk,
            accel=accel,
        )
    release, swaps, runs = split_output(booted.output, len(scenarios))
    policy = capabilities.policy_for(release)
    areas = capabilities.swap_areas(swaps) if swaps else ()
    device = areas[0].device if areas else None
    results: list[ProbeResult] = []
    for (name, title, scenario), run in zip(scenarios, runs, strict=True):
        mismatch = swap_mismatch(scenario, device)
        if mismatch is not None:
            results.append(ProbeResult(name, title, None, (), (), mismatch))
            continue
        trace = replay(on_swap_device(scenario, device), policy)
        kernel_seen, ran, skipped = observations(scenario, run, timeout)
        # Frames are compared where the program showed them (root in the VM reads PFNs; it
        # never shows a first touch, "new", which the simulator's side then leaves out too).
        shown = {o.step for o in kernel_seen if o.value.startswith("frame ")}
        results.append(verdict(name, title, trace, kernel_seen, ran, skipped, True, shown))
    described = capabilities.describe_swap(areas=areas)
    report = ProbeReport(release, policy, tuple(results), described)
    return VMRun(report, tuple(runs), booted)


def native_runs(sources: list[str], timeout: float, cache: Path | None = None) -> list[ProgramRun]:
    """The same programs on the running kernel, one after another, each bounded."""
    binaries = build_programs(sources, (cache or default_cache()) / "programs")
    runs = []
    for path in binaries:
        try:
            done = subprocess.run(
                [str(path), f"{timeout:g}"], capture_output=True, timeout=timeout + GRACE_S,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            runs.append(ProgramRun(done.stdout.decode("utf-8", "replace"), done.returncode))
        except subprocess.TimeoutExpired as err:
            out = err.stdout.decode("utf-8", "replace") if isinstance(err.stdout, bytes) else ""
            runs.append(ProgramRun(out, None))
    return runs
