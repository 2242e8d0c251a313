"""The sweep's answer in sentences: what `cowlab lab sweep` prints and `/lab` and `/lab/sweep`
show, read off the document's ``summary`` and ``august_2020`` (DESIGN.md §11).

Every number comes from the sweep; the words around them are the August 2020 thread's: Peter
Xu's FAULT_FLAG_BREAK_COW (era ``5.8-break-cow``), Linus' READ_WRONG_SIDE_COW_OK inversion
(``5.8-wrong-side-ok``), and what landed instead (5.9's page_count rule, 5.19's
PageAnonExclusive).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.presets import BACKINGS

# How a verdict kind is counted in a sentence ("3 stale pins").
_NOUNS = {
    "leak": ("leak", "leaks"),
    "stale": ("stale pin", "stale pins"),
    "userfault": ("userfault", "userfaults"),
    "file-corrupted": ("corrupted file", "corrupted files"),
    "segv": ("segfault", "segfaults"),
    "needless-copy": ("needless copy", "needless copies"),
}

# The thread's positions, by era id, in the order the story tells them.
DEBATE = (
    ("5.8", "5.8's forced write (every read GUP on a COW mapping breaks COW as a write)"),
    ("5.8-break-cow", "Peter Xu's FAULT_FLAG_BREAK_COW"),
    ("5.8-wrong-side-ok", "Linus' READ_WRONG_SIDE_COW_OK inversion"),
    ("5.9", "what landed first, 5.9's page_count rule (09854ba94c6a)"),
    ("5.19", "PageAnonExclusive (5.19, 6c287605fd56)"),
)

BACKING_NAMES: dict[str, str] = {
    **{str(b): label for b, label in BACKINGS.items()},
    "base": "base pages",
    "thp": "PMD-mapped THP",
    "pte-thp": "PTE-mapped THP",
    "hugetlb": "hugetlb",
    "all": "every backing together",
}


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def costs(counts: Mapping[str, int]) -> str:
    """``{"leak": 2, "stale": 1}`` as "2 leaks and 1 stale pin"; "nothing" when all are 0."""
    parts = [f"{n} {_NOUNS.get(k, (k, k))[n != 1]}" for k, n in counts.items() if n]
    if not parts:
        return "nothing"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _changes(changes: list[str]) -> str:
    return ", ".join(changes)


def backing_sentences(backing: str, answer: Mapping[str, Any]) -> list[str]:
    """The answer for one backing (a ``summary`` entry) in a few sentences."""
    name = BACKING_NAMES.get(backing, backing)
    out = []
    xfail = answer["expected_failures"]
    kept = f" but the {len(xfail)} expected failures" if xfail else ""
    out.append(
        f"{_upper_first(name)} ({answer['presets']} presets): {answer['clean']:,} of "
        f"{answer['designs']:,} designs are clean (no verdict on any preset{kept})."
    )
    if xfail:
        out.append(
            "Expected failures — today's kernel still gets them wrong, and cow.c marks them "
            "XFAIL, so no design is asked to pass them: " + ", ".join(xfail) + "."
        )
    clean_eras = answer["eras_clean"]
    out.append(("Clean eras: " + ", ".join(clean_eras) + ".") if clean_eras else "No era is clean.")
    eras = answer["eras"]
    smallest = answer["smallest_change"]
    for era, label in DEBATE:
        if era not in eras:
            continue
        sentence = f"{_upper_first(label)} costs {costs(eras[era])}"
        if era in clean_eras:
            sentence += "."
        elif era in smallest:
            n = len(smallest[era])
            sentence += (
                f"; the smallest clean change from it takes {n} knob{'s' if n != 1 else ''}: "
                f"{_changes(smallest[era])}"
                + (
                    f" (one of {answer['smallest_change_designs'][era]} as small)."
                    if answer["smallest_change_designs"][era] > 1
                    else "."
                )
            )
        else:
            sentence += "; no design is clean, so no change makes it clean."
        out.append(sentence)
    return out


def debate_sentences(doc: Mapping[str, Any]) -> list[str]:
    """The August 2020 thread under both reuse rules, from ``august_2020``."""
    aug = doc["august_2020"]
    at58 = aug["gup_read"]
    at59 = aug["under_page_count"]["gup_read"]
    out = [
        f"With the rest of 5.8 kept (mapcount reuse), breaking COW as a write costs "
        f"{costs(at58['break-as-write'])}; Peter's FAULT_FLAG_BREAK_COW costs "
        f"{costs(at58['break-cow'])}; Linus' inversion costs {costs(at58['wrong-side-ok'])}; "
        f"no break at all costs {costs(at58['none'])} (expected failures left out).",
        f"Under 5.9's page_count rule the two proposals part: FAULT_FLAG_BREAK_COW costs "
        f"{costs(at59['break-cow'])}, the inversion {costs(at59['wrong-side-ok'])}. The "
        "engine leaves the page a FAULT_FLAG_BREAK_COW break copied read-only (the proposal: "
        "'the page is not marked writable' for a pure read), so the reader's own later write "
        "faults again, finds the GUP reference in page_count and copies away from it: the pin "
        "goes stale. Linus' inversion breaks COW as a write, mapping the copy writable, so "
        "the later write does not fault.",
    ]
    if aug["changes_needed"] is None:
        out.append("No design has neither a leak nor a userfault.")
    else:
        out.append(
            f"Neither proposal closes every leak alone: a design with no leak and no userfault "
            f"needs {aug['changes_needed']} knobs changed from 5.8 "
            f"({aug['no_leak_no_userfault_designs']} such design"
            f"{'s' if aug['no_leak_no_userfault_designs'] != 1 else ''}), e.g. "
            + "; ".join(aug["no_leak_no_userfault_nearest"][:3])
            + " — the write-fault reuse rule had to change too."
        )
    return out


def modelling_notes() -> list[str]:
    """The modelling choices that decide the debate, as /lab and docs/lab.md state them."""
    return [
        "FAULT_FLAG_BREAK_COW leaves the copy read-only, as the proposal meant it "
        "(kernel-cow-semantics.md §3: the page is not marked writable and dirty/soft-dirty are "
        "not set for a pure read; engine/policies/knobs/gup.py BreakCow). That is why, under "
        "the page_count rule, Peter's flag leaves stale pins where Linus' inversion (a real "
        "write fault, the copy mapped writable) does not.",
        "5.8-break-cow models the proposal's intent on every backing. The posted v2 patch left "
        "hugetlb on FOLL_WRITE only (follow_hugetlb_page faults for FOLL_WRITE, hugetlb_fault "
        "copies only for FAULT_FLAG_WRITE), so under the posted code a hugetlb vmsplice() "
        "still leaks; the engine breaks COW for hugetlb too.",
        "Expected failures are the presets today's kernel (the newest merged era) still gets "
        "wrong — the hugetlb vmsplice() cases cow.c marks XFAIL. They are named, and left out "
        "of 'clean', so a design is not asked to do what no kernel does.",
    ]
