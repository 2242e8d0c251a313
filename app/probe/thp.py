"""Transparent huge pages on the running kernel: asking for one, and checking what was mapped.

`P mmap a backing=thp` is, as in tools/testing/selftests/mm/cow.c, a 2 MiB-aligned anonymous
mapping with MADV_HUGEPAGE; its first write faults the THP in (a first read maps the huge zero
page instead), as in the simulator (docs/huge-pages.md: "PMD-mapped once touched"; the
selftest's memset() is the presets' first write). Whether the kernel really gave a THP and maps
it with one PMD is not assumed: the
VMA's ``AnonHugePages`` in /proc/self/smaps counts only PMD-mapped anonymous THPs, and the
folio's ``KPF_THP`` flag in /proc/kpageflags (readable by root; the PFN comes from
/proc/self/pagemap) says whether it is still one large folio once it is mapped by PTEs.
"""

from __future__ import annotations

from pathlib import Path

from app.probe import libc

HPAGE_SIZE = 2 << 20
MADV_HUGEPAGE = 14
MAP_HUGETLB = 0x40000
MAP_HUGE_2MB = 21 << 26  # log2(2 MiB) << MAP_HUGE_SHIFT
KPF_THP = 22
PFN_MASK = (1 << 55) - 1
SYSFS = Path("/sys/kernel/mm/transparent_hugepage")


def _selected(path: Path) -> str | None:
    """The bracketed word of a sysfs choice file ("always [madvise] never" -> "madvise")."""
    try:
        text = path.read_text()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


def unavailable() -> str | None:
    """Why MADV_HUGEPAGE cannot give a 2 MiB THP here (before trying one), or None."""
    if libc.PAGE_SIZE != 4096:
        return f"THP of 2 MiB assumes 4 KiB base pages (this kernel uses {libc.PAGE_SIZE})"
    mode = _selected(SYSFS / "enabled")
    if mode is None:
        return "THP not available (no transparent_hugepage/enabled: CONFIG_TRANSPARENT_HUGEPAGE)"
    if mode == "never":
        return "THP disabled (transparent_hugepage/enabled is [never])"
    size = _selected(SYSFS / "hugepages-2048kB" / "enabled")
    if size == "never":
        return "2 MiB THP disabled (transparent_hugepage/hugepages-2048kB/enabled is [never])"
    return None


def anon_huge_kb(addr: int) -> int | None:
    """``AnonHugePages`` of the VMA that contains ``addr`` (kB), None when none contains it."""
    with open("/proc/self/smaps") as smaps:
        inside = False
        for line in smaps:
            head = line.split(maxsplit=1)[0]
            if not head.endswith(":"):  # a VMA's first line: "start-end perms ..."
                start, end = (int(x, 16) for x in head.split("-"))
                if inside:
                    return None  # the VMA ended without the field (never, on a real kernel)
                inside = start <= addr < end
            elif inside and head == "AnonHugePages:":
                return int(line.split()[1])
    return None


def pmd_mapped(addr: int) -> bool:
    """Whether the 2 MiB at ``addr`` (a VMA of its own) is one PMD-mapped anonymous THP."""
    return (anon_huge_kb(addr) or 0) >= HPAGE_SIZE // 1024


def is_thp_folio(addr: int) -> bool | None:
    """Whether the page mapped at ``addr`` belongs to a THP folio; None when this process may
    not read PFNs (pagemap hides them without CAP_SYS_ADMIN) or nothing is mapped there."""
    try:
        with open("/proc/self/pagemap", "rb") as pm:
            pm.seek((addr // libc.PAGE_SIZE) * 8)
            entry = int.from_bytes(pm.read(8), "little")
        pfn = entry & PFN_MASK
        if not entry >> 63 & 1 or pfn == 0:
            return None
        with open("/proc/kpageflags", "rb") as flags:
            flags.seek(pfn * 8)
            return bool(int.from_bytes(flags.read(8), "little") >> KPF_THP & 1)
    except OSError:
        return None


def map_thp(addr: int) -> None:
    """Map 2 MiB at ``addr`` (2 MiB-aligned) for THP: anonymous, private, MADV_HUGEPAGE.

    Not populated: as in the simulator, the first write fault brings the THP in
    (do_huge_pmd_anonymous_page) and a first read maps the huge zero page; `check_faulted`
    tells whether the kernel really gave a PMD-mapped THP.
    """
    flags = libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_FIXED_NOREPLACE
    libc.mmap(addr, HPAGE_SIZE, libc.PROT_READ | libc.PROT_WRITE, flags)
    libc.madvise(addr, HPAGE_SIZE, MADV_HUGEPAGE)


def check_faulted(addr: int) -> str | None:
    """After the write fault that brought the page in: None when a PMD maps a THP there, else
    what the kernel gave instead."""
    if pmd_mapped(addr):
        return None
    return (
        f"the kernel did not fault in a PMD-mapped THP (AnonHugePages {anon_huge_kb(addr)} kB "
        "after the first write: memory too fragmented, or THP limited for this process)"
    )


def map_hugetlb(addr: int) -> None:
    """Map a private 2 MiB hugetlb page at ``addr`` (the pool must hold one: a private
    mapping reserves its page at mmap time). Faulted in by the first access, as in the
    simulator."""
    flags = libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_FIXED_NOREPLACE
    flags |= MAP_HUGETLB | MAP_HUGE_2MB
    libc.mmap(addr, HPAGE_SIZE, libc.PROT_READ | libc.PROT_WRITE, flags)


def pte_map(addr: int, perms: str) -> str | None:
    """Remap the THP at ``addr`` with PTEs, the folio kept whole, as cow.c does: change the
    protection of its second subpage and change it back (the PMD is split; the folio is not).
    ``perms`` is the VMA's permission string; None, or why the result is not a PTE-mapped THP.
    """
    prot = (libc.PROT_READ if "r" in perms else 0) | (libc.PROT_WRITE if "w" in perms else 0)
    # mprotect to the protection the VMA already has changes nothing (and splits nothing).
    other = libc.PROT_READ if prot != libc.PROT_READ else libc.PROT_NONE
    was_thp = pmd_mapped(addr)  # not the huge zero page, which smaps does not count
    libc.mprotect(addr + libc.PAGE_SIZE, libc.PAGE_SIZE, other)
    libc.mprotect(addr + libc.PAGE_SIZE, libc.PAGE_SIZE, prot)
    if pmd_mapped(addr):
        return "the THP is still PMD-mapped after the mprotect() trick"
    if was_thp and is_thp_folio(addr) is False:
        return "the kernel split the THP instead of remapping it with PTEs"
    return None
