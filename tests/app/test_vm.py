"""`cowlab probe --kernel`'s parts that need no VM: the initramfs, the modules a swap device
needs, where the kernel and its modules are, reading the programs' output, the CLI's errors."""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import pytest

from app.probe import cli, vm
from app.probe.compare import verdict
from engine.presets import PRESETS
from engine.syntax import parse
from engine.trace import replay


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cowlab")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _ko(path: Path, depends: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x7fELF junk\x00license=GPL\x00depends=" + depends.encode() + b"\x00name=x\x00"
    )


# ------------------------------------------------------------------------------ initramfs
@pytest.mark.skipif(not vm.BUSYBOX.is_file(), reason="Debian's busybox-static is not installed")
def test_the_initramfs_is_a_newc_archive_busybox_unpacks(tmp_path: Path) -> None:
    program = tmp_path / "prog"
    program.write_bytes(b"\x7fELF" + bytes(range(256)) * 3 + b"odd")
    archive = tmp_path / "initrd"
    vm.initramfs(archive, [program, program], 7.0, "zram", [("zram", b"module bytes")])
    out = tmp_path / "root"
    out.mkdir()
    with archive.open("rb") as f:
        done = subprocess.run(
            [str(vm.BUSYBOX), "cpio", "-i", "-d"], stdin=f, cwd=out, capture_output=True
        )
    assert done.returncode == 0, done.stderr
    assert (out / "p" / "0").read_bytes() == program.read_bytes()
    assert (out / "p" / "1").read_bytes() == program.read_bytes()
    assert (out / "lib/cowlab/zram.ko").read_bytes() == b"module bytes"
    assert (out / "bin/busybox").read_bytes() == vm.BUSYBOX.read_bytes()
    assert (out / "bin/sh").is_symlink() and str((out / "bin/sh").readlink()) == "busybox"
    init = (out / "init").read_text()
    assert "insmod /lib/cowlab/zram.ko" in init and "swapon /dev/zram0" in init
    assert "timeout -s KILL 17 /p/$i 7" in init and "poweroff -f" in init


def test_the_init_script_is_valid_shell_for_every_swap_kind() -> None:
    for swap in ("zram", "file", "none"):
        script = vm.init_script(3, 10.0, swap, ["virtio_blk"])
        done = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
        assert done.returncode == 0, (swap, done.stderr)
    assert "/dev/vda" in vm.init_script(1, 1.0, "file", [])
    assert "swapon" not in vm.init_script(1, 1.0, "none", [])


# ------------------------------------------------------------------------------ modules
def test_modules_come_with_their_dependencies_first(tmp_path: Path) -> None:
    root = tmp_path / "6.1.0-test"
    _ko(root / "kernel/drivers/block/zram/zram.ko", "zsmalloc")
    _ko(root / "kernel/mm/zsmalloc.ko", "")
    _ko(root / "kernel/crypto/lzo-rle.ko", "lzo_compress,lzo_decompress")
    _ko(root / "kernel/lib/lzo/lzo_compress.ko", "")
    _ko(root / "kernel/lib/lzo/lzo_decompress.ko", "")
    _ko(root / "kernel/drivers/block/virtio_blk.ko", "")
    order = [name for name, _ in vm.modules_for(root, vm.SWAP_MODULES["zram"])]
    # `lzo` is not a module here (built in, say): left out, the VM finds out.
    assert order == ["lzo_compress", "lzo_decompress", "lzo_rle", "zsmalloc", "zram"]


def test_an_image_found_in_an_unpacked_package_takes_its_modules(tmp_path: Path) -> None:
    image = tmp_path / "boot" / "vmlinuz-6.1.0-9-test"
    image.parent.mkdir()
    image.write_bytes(b"kernel")
    modules = tmp_path / "lib" / "modules" / "6.1.0-9-test"
    (modules / "kernel").mkdir(parents=True)
    assert vm.locate_kernel(image, None, tmp_path / "scratch") == vm.Kernel(image, modules)
    # A root holding lib/modules/RELEASE, given with --modules, is the same directory.
    assert vm.locate_kernel(image, tmp_path, tmp_path / "s").modules == modules
    with pytest.raises(vm.VMError, match="no such kernel image"):
        vm.locate_kernel(tmp_path / "nope", None, tmp_path)
    with pytest.raises(vm.VMError, match="no such module directory"):
        vm.locate_kernel(image, tmp_path / "nope", tmp_path)


# ------------------------------------------------------------------------------ output
REPORT = (
    "@@cowlab release 6.1.0-57-cloud-amd64\n"
    "@@cowlab swaps\n"
    "Filename\tType\tSize\tUsed\tPriority\n/dev/zram0  partition\t262140\t0\t-2\n"
    "@@cowlab programs\n"
    "@@cowlab run 0\n# kernel 6.1.0-57-cloud-amd64 -> era 5.19\n"
    "observed 4 v1\nobserved 6 v1\n1..3\nok 1 - x\n# behaves like: 5.19 6.2\n"
    "@@cowlab exit 0 0\n"
    "@@cowlab run 1\n# kernel 6.1.0-57-cloud-amd64 -> era 5.19\nobserved 4 v1\n"
    "@@cowlab exit 1 137\n"
    "@@cowlab done\n"
)


def test_the_vms_report_splits_into_release_swaps_and_programs() -> None:
    release, swaps, runs = vm.split_output(REPORT, 3)
    assert release == "6.1.0-57-cloud-amd64"
    assert swaps.startswith("Filename") and "/dev/zram0" in swaps
    assert runs[0].status == 0 and runs[0].behaves_like == ("5.19", "6.2")
    assert runs[1].status == 137 and runs[1].behaves_like is None
    assert runs[2] == vm.ProgramRun("", None)  # never started: /init did not get there


def test_a_program_killed_in_the_vm_is_a_skip_with_what_it_saw() -> None:
    scenario = parse(PRESETS["cow-basic"].text)
    _, _, runs = vm.split_output(REPORT, 2)
    seen, ran, skipped = vm.observations(scenario, runs[0], 10.0)
    assert [(o.step, o.value) for o in seen] == [(4, "v1"), (6, "v1")] and skipped is None
    assert verdict("cow-basic", "", replay(scenario, "5.19"), seen, ran, skipped).agree is True
    seen, ran, skipped = vm.observations(scenario, runs[1], 10.0)
    assert ran == 4 and skipped is not None and "killed" in skipped
    result = verdict("cow-basic", "", replay(scenario, "5.19"), seen, ran, skipped)
    assert result.status == "skipped"
    assert [(o.step, o.value) for o in result.sim_observed] == [(4, "v1")]


def test_a_programs_own_skip_says_how_far_it_got() -> None:
    scenario = parse(PRESETS["cow-basic"].text)
    run = vm.ProgramRun(
        "observed 4 v1\n# skipped from step 5: no swap configured (needed by `x`)\n"
        "# behaves like no era in particular: every era expects what the steps that ran showed\n",
        0,
    )
    seen, ran, skipped = vm.observations(scenario, run, 10.0)
    assert ran == 4 and skipped == "no swap configured (needed by `x`)"
    assert run.behaves_like is None


# ------------------------------------------------------------------------------ the CLI
@pytest.mark.parametrize(
    ("attribute", "missing", "package"),
    [
        ("QEMU", "qemu-system-none-such", "needs QEMU .*qemu-system-x86"),
        ("BUSYBOX", Path("/nonexistent/busybox"), "busybox-static"),
        ("CC", "gcc-none-such", "Debian's gcc"),
    ],
)
def test_the_cli_says_what_is_missing_to_boot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attribute: str, missing: object, package: str
) -> None:
    from app.cli.main import InputError

    image = tmp_path / "vmlinuz"
    image.write_bytes(b"kernel")
    monkeypatch.setattr(vm, attribute, missing)
    monkeypatch.setattr(vm, "default_cache", lambda: tmp_path / "cache")
    args = _cli(["probe", "--kernel", str(image), "--swap", "none", "--preset", "cow-basic"])
    with pytest.raises(InputError, match=package):
        args.func(args)
    assert not (tmp_path / "cache").exists()  # refused before building anything


def test_the_cli_refuses_vm_options_that_cannot_work(tmp_path: Path) -> None:
    from app.cli.main import InputError

    with pytest.raises(InputError, match="--modules needs --kernel"):
        args = _cli(["probe", "--modules", str(tmp_path)])
        args.func(args)
    with pytest.raises(InputError, match="no such kernel image"):
        args = _cli(["probe", "--kernel", str(tmp_path / "nope"), "--preset", "cow-basic"])
        args.func(args)
    with pytest.raises(InputError, match="--frames"):
        args = _cli(["probe", "--kernel", str(tmp_path), "--frames"])
        args.func(args)


# ------------------------------------------------------------------------------ the boot
# A stand-in for QEMU: with KVM it aborts as `-cpu host` does on this kind of machine; with TCG
# it writes what /init would (or, with HANG set, never finishes). Its pid goes to PIDFILE.
FAKE_QEMU = """#!/bin/sh
echo $$ >> "$PIDFILE"
out=""
for arg in "$@"; do
  case "$arg" in file:*) out="${arg#file:}";; esac
done
case " $* " in *" kvm "*) echo "error: failed to set MSR 0x10a" >&2; exit 1;; esac
printf '@@cowlab release 6.1.0-test\\n@@cowlab swaps\\nFilename Type Size Used Priority\\n' > "$out"
printf '@@cowlab programs\\n@@cowlab run 0\\nobserved 4 v1\\n' >> "$out"
[ -n "$HANG" ] && exec sleep 600
printf '# behaves like: 5.19\\n@@cowlab exit 0 0\\n@@cowlab done\\n' >> "$out"
"""


@pytest.fixture
def fake_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "qemu"
    script.write_text(FAKE_QEMU)
    script.chmod(0o755)
    kvm = tmp_path / "kvm"
    kvm.write_bytes(b"")
    monkeypatch.setattr(vm, "QEMU", str(script))
    monkeypatch.setattr(vm, "KVM_DEVICE", str(kvm))
    monkeypatch.setattr(vm, "_kvm_failed", False)
    monkeypatch.setenv("PIDFILE", str(tmp_path / "pids"))
    return tmp_path / "pids"


def test_kvm_is_tried_and_tcg_taken_when_it_does_not_work(fake_qemu: Path, tmp_path: Path) -> None:
    booted = vm.boot(tmp_path / "vmlinuz", tmp_path / "initrd", tmp_path, count=1, timeout=1.0)
    assert booted.accel == "tcg" and "@@cowlab done" in booted.output
    assert len(fake_qemu.read_text().split()) == 2  # KVM once, then TCG
    # Known not to work in this process: the next boot goes straight to TCG.
    vm.boot(tmp_path / "vmlinuz", tmp_path / "initrd", tmp_path, count=1, timeout=1.0)
    assert len(fake_qemu.read_text().split()) == 3
    forced = vm.boot(tmp_path / "k", tmp_path / "i", tmp_path, count=1, timeout=1.0, accel="tcg")
    assert forced.accel == "tcg"


def test_a_vm_that_never_finishes_is_killed_within_its_bound(
    fake_qemu: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANG", "1")
    monkeypatch.setattr(vm, "GRACE_S", 0.0)
    monkeypatch.setattr(vm, "BOOT_TIMEOUT_S", 1.0)
    with pytest.raises(vm.VMError, match="did not finish in time"):
        vm.boot(tmp_path / "k", tmp_path / "i", tmp_path, count=1, timeout=0.1, accel="tcg")
    (pid,) = map(int, fake_qemu.read_text().split())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped: no QEMU outlives the probe
