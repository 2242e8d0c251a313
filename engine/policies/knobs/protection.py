"""Write permission without a fault: mprotect(PROT_WRITE) upgrading PTEs at once, whether it
keeps a shared mapping's userfaultfd write-protection, and which mappings userfaultfd may
write-protect."""

from __future__ import annotations

from engine.policies.decision import Decision
from engine.policies.knobs.choice import EXCLUSIVE_BIT, Choice
from engine.state import Frame, Pte, Vma


class MprotectUpgrade(Choice):
    """change_pte_range on a private mapping made writable: map exclusive pages writable now?"""

    knob = "mprotect_upgrade"

    def mprotect_makes_writable(self, pte: Pte, frame: Frame, vma: Vma) -> Decision:
        raise NotImplementedError

    def mprotect_makes_pmd_writable(self, pte: Pte, frame: Frame, vma: Vma) -> Decision:
        """change_huge_pmd on a PMD-mapped THP: 64fe24a3e05e left PMDs alone ("probably not
        worth the trouble"); c27f479ef542 (6.2) gave them can_change_pmd_writable."""
        return _NO_PMD_UPGRADE


class NoUpgrade(MprotectUpgrade):
    id = "never"
    label = "PTEs stay read-only until the next write fault"
    kernel = "change_pte_range"
    commit = ""
    why = "every write after mprotect takes a fault, which decides reuse or copy then"

    def mprotect_makes_writable(self, pte: Pte, frame: Frame, vma: Vma) -> Decision:
        """Before 6.0 mprotect(PROT_WRITE) leaves PTEs R/O until the next write fault."""
        return _NO_UPGRADE


class DirtyExclusiveUpgrade(MprotectUpgrade):
    id = "dirty-exclusive"
    label = "map dirty exclusive anon pages writable"
    kernel = "can_change_pte_writable"
    commit = "64fe24a3e05e"
    why = (
        "an exclusive anon page cannot reach anyone else, so its dirty PTE becomes writable at "
        "once unless soft-dirty or uffd-wp wants the fault (brings the exclusive bit)"
    )
    needs = frozenset({EXCLUSIVE_BIT})
    need_dirty = True

    def mprotect_makes_writable(self, pte: Pte, frame: Frame, vma: Vma) -> Decision:
        """can_change_pte_writable (64fe24a3e05e, 6.0): an exclusive *dirty* anon page may be
        mapped writable at once, unless soft-dirty or uffd-wp tracking needs the fault."""
        inputs: dict[str, int | bool | str] = {
            "anon_exclusive": frame.anon_exclusive,
            "pte_dirty": pte.dirty,
            "softdirty_tracking": vma.softdirty_tracking,
            "pte_softdirty": pte.softdirty,
            "uffd_wp": pte.uffd_wp,
        }
        commit = self.commit
        if vma.softdirty_tracking and not pte.softdirty:
            why = "soft-dirty tracking wants to see the next write, so the PTE stays read-only"
            return Decision(
                "none",
                "soft-dirty needs a fault",
                "can_change_pte_writable",
                "76aefad628aa",
                why,
                inputs,
            )
        if pte.uffd_wp:
            why = "the PTE is userfaultfd write-protected, so it stays read-only"
            return Decision(
                "none", "uffd-wp needs a fault", "can_change_pte_writable", commit, why, inputs
            )
        if frame.kind != "anon" or not frame.anon_exclusive:
            why = "the page is not an exclusive anonymous page, so the next write must fault"
            return Decision("none", "not exclusive", "can_change_pte_writable", commit, why, inputs)
        if self.need_dirty and not pte.dirty:
            why = "the exclusive page is clean; this kernel upgrades only dirty ones"
            return Decision("none", "clean page", "can_change_pte_writable", commit, why, inputs)
        why = "the page is exclusive to this process, so mprotect maps it writable at once"
        return Decision(
            "allow", "exclusive anon page", "can_change_pte_writable", commit, why, inputs
        )


class CleanExclusiveUpgrade(DirtyExclusiveUpgrade):
    """6.2: d84887739d5c (Nadav Amit, 'mm/mprotect: allow clean exclusive anon pages to be
    writable') drops 64fe24a3e05e's dirty condition; its decisions cite d84887739d5c."""

    id = "clean-exclusive"
    label = "map clean exclusive anon pages writable too"
    commit = "d84887739d5c"
    why = (
        "6.2 drops the dirty condition: an exclusive anon page is writable after mprotect even "
        "before its first write (brings the exclusive bit)"
    )
    need_dirty = False

    def mprotect_makes_pmd_writable(self, pte: Pte, frame: Frame, vma: Vma) -> Decision:
        """can_change_pmd_writable (c27f479ef542, "mm/huge_memory: try avoiding write faults
        when changing PMD protection", 6.2): the PTE rule for an exclusive anonymous THP,
        clean or dirty, unless soft-dirty or uffd-wp tracking needs the fault."""
        decision = self.mprotect_makes_writable(pte, frame, vma)
        return Decision(
            decision.outcome,
            decision.rule,
            "change_huge_pmd → can_change_pmd_writable",
            "c27f479ef542",
            decision.why.replace("PTE", "PMD"),
            decision.inputs,
        )


class MprotectUffdWp(Choice):
    """mprotect(PROT_WRITE) of a shared mapping whose PTE is userfaultfd write-protected: does
    the protection survive?"""

    knob = "mprotect_uffd_wp"

    def mprotect_shared_uffd_wp(self, pte: Pte) -> Decision:
        raise NotImplementedError


class MprotectDropsUffdWp(MprotectUffdWp):
    id = "drop"
    label = "the PTE becomes writable, the protection is lost"
    kernel = "change_pte_range → pte_modify"
    commit = ""
    why = (
        "uffd-wp does not make the VMA want writenotify, so a shared mapping without dirty "
        "tracking (shmem, memfd) keeps a writable vm_page_prot and no write faults any more"
    )

    def mprotect_shared_uffd_wp(self, pte: Pte) -> Decision:
        """mprotect(PROT_WRITE) of a shared mapping whose PTE is uffd-wp protected.

        Before 51d3d5eb74ff ("mm/userfaultfd: enable writenotify while userfaultfd-wp is
        enabled for a VMA", merged for 6.2) registering uffd-wp did not make the VMA want
        writenotify, so a shared mapping without dirty tracking (shmem, memfd) has a writable
        vm_page_prot and change_pte_range's pte_modify() maps the PTE writable: the uffd-wp bit
        stays but no write faults any more. Only points with file-backed uffd-wp
        (``uffd_wp_file=file-too``) reach this."""
        return Decision(
            "allow",
            "uffd-wp does not enable writenotify",
            "change_pte_range → pte_modify",
            "",
            "the shared mapping's page protection is writable and uffd-wp does not ask for "
            "write notification, so the PTE becomes writable and the protection is lost",
            {"uffd_wp": pte.uffd_wp},
        )


class MprotectKeepsUffdWp(MprotectUffdWp):
    id = "keep"
    label = "uffd-wp enables writenotify, the PTE stays read-only"
    kernel = "vma_wants_writenotify → can_change_pte_writable"
    commit = "51d3d5eb74ff"
    why = (
        "'mm/userfaultfd: enable writenotify while userfaultfd-wp is enabled for a VMA' (6.2): "
        "vm_page_prot is read-only and can_change_pte_writable() refuses a uffd-wp PTE, so the "
        "write still reaches the monitor"
    )

    def mprotect_shared_uffd_wp(self, pte: Pte) -> Decision:
        """51d3d5eb74ff ("mm/userfaultfd: enable writenotify while userfaultfd-wp is enabled for
        a VMA"): a uffd-wp VMA wants writenotify, so vm_page_prot is read-only and
        can_change_pte_writable() refuses a uffd-wp PTE; the write still faults.

        Merged for 6.2 and Cc stable (5.19+). The 5.19 era shows mainline 6.1, released
        without it (DESIGN §3: stable backports are not modelled), so there mprotect drops the
        protection; eras before 5.19 cannot write-protect a shared file mapping at all."""
        return Decision(
            "none",
            "uffd-wp enables writenotify",
            "vma_wants_writenotify → can_change_pte_writable",
            "51d3d5eb74ff",
            "the PTE is userfaultfd write-protected and uffd-wp makes the VMA want write "
            "notification, so it stays read-only",
            {"uffd_wp": pte.uffd_wp},
        )


class UffdWpFile(Choice):
    """userfaultfd_register with UFFDIO_REGISTER_MODE_WP on a file-backed private mapping."""

    knob = "uffd_wp_file"

    def uffd_wp_register_file(self, vma: Vma) -> Decision | None:
        return None

    def uffd_wp_register_hugetlb(self, vma: Vma) -> Decision | None:
        """hugetlbfs came with shmem in the same 5.19 series: the choice answers both."""
        return self.uffd_wp_register_file(vma)


class UffdWpAnonOnly(UffdWpFile):
    id = "anon-only"
    label = "write-protection of anonymous memory only"
    kernel = "userfaultfd_register → vma_can_userfault"
    commit = ""
    why = "before 5.19 UFFDIO_REGISTER in write-protect mode fails with -EINVAL on a file"

    def uffd_wp_register_file(self, vma: Vma) -> Decision | None:
        return Decision(
            "refuse",
            "uffd-wp is anonymous-only",
            "userfaultfd_register → vma_can_userfault",
            "",
            f"{vma.page} is file-backed: before 5.19 userfaultfd write-protection works "
            "on anonymous memory only, UFFDIO_REGISTER fails with -EINVAL",
        )

    def uffd_wp_register_hugetlb(self, vma: Vma) -> Decision | None:
        """vma_can_userfault before 5.19: VM_UFFD_WP only on vma_is_anonymous() VMAs, and a
        hugetlb VMA is not one (it is backed by hugetlbfs)."""
        return Decision(
            "refuse",
            "uffd-wp is anonymous-only",
            "userfaultfd_register → vma_can_userfault",
            "",
            f"{vma.page} is a hugetlb mapping: before 5.19 userfaultfd write-protection works "
            "on anonymous (non-hugetlb) memory only, UFFDIO_REGISTER fails with -EINVAL",
        )


class UffdWpFileToo(UffdWpFile):
    id = "file-too"
    label = "PTE markers allow file-backed memory too"
    kernel = "userfaultfd_register"
    commit = ""
    why = "Peter Xu's 'userfaultfd-wp: Support shmem and hugetlbfs' (5.19): PTE markers"


_NO_PMD_UPGRADE = Decision(
    "none",
    "no write upgrade for a PMD",
    "change_huge_pmd",
    "",
    "this kernel never maps a huge PMD writable in mprotect; the next write takes a fault",
)
_NO_UPGRADE = Decision(
    "none",
    "no write upgrade",
    "change_pte_range",
    "",
    "this kernel never maps a page writable in mprotect; the next write takes a fault",
)

MPROTECT_UPGRADE = (NoUpgrade(), DirtyExclusiveUpgrade(), CleanExclusiveUpgrade())
MPROTECT_UFFD_WP = (MprotectDropsUffdWp(), MprotectKeepsUffdWp())
UFFD_WP_FILE = (UffdWpAnonOnly(), UffdWpFileToo())
