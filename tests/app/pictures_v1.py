"""The base-page picture, frozen as text: every preset's SVG at every step under every era.

Huge pages (DESIGN.md §10) taught the picture to draw folios; a base-page scenario must still
be drawn byte for byte as before, so the SVGs a teacher exported and the slides made from them
stay true. tests/app/test_pictures_v1.py compares each base-page preset's pictures with its file
in tests/data/pictures_v1/, and a change shows there as a diff a reviewer can read.

    python -m tests.app.pictures_v1            # show how the pictures differ from the files
    python -m tests.app.pictures_v1 --write    # record them again (a deliberate change)

A file holds the SVG exactly as `app.picture.svg.draw` writes it (one element per line), so the
file stands for the bytes. Written out in full, the 2,214 pictures (29 presets × 9 eras × every
step) would take 9.4 MB; two rules bring the 29 files to 1.9 MB (70 KB compressed, as git
stores them) without hiding a byte:

- a run of steps an era draws exactly as the era before it is one line, ``## 5.9 steps 0–4:
  drawn as under 5.8``;
- a group (``<g>…</g>``, one frame, page-table entry, arrow…) drawn before in the same file is
  its first line followed by `` … as at 4.8 step 3``: the group of that picture that begins with
  the same line (the writer checks that line names one group there), byte for byte.

So a change to how a frame is drawn shows once, where the file first draws that frame; a change
of what a step shows, at that step.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from pathlib import Path

from app.picture.svg import draw
from app.views.runs import run
from app.views.sim import picture
from engine.presets import PRESETS

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "pictures_v1"
# The eras the pictures were recorded under. An era added later draws its own pictures, which
# tests/app/test_pictures_v1.py compares with its predecessor's where it changes nothing.
FROZEN_ERAS = (
    "4.8",
    "5.7",
    "5.8",
    "5.8-break-cow",
    "5.8-wrong-side-ok",
    "5.9",
    "5.18",
    "5.19",
    "6.2",
)
HUGE_MARKERS = ("backing=", "pte-map")
SAME_AS = " … as at "


def base_page_presets() -> list[str]:
    """The presets that map no huge page: their pictures must not change."""
    return [
        name
        for name, preset in PRESETS.items()
        if not any(marker in preset.text for marker in HUGE_MARKERS)
    ]


def svgs(name: str, policy: str) -> list[str]:
    """Every step's SVG of preset ``name`` under ``policy``, titled without the era."""
    r = run(PRESETS[name].text, policy)
    return [draw(picture(r, k, f"{name} {k}").scene) for k in range(r.last + 1)]


def _chunks(svg: str) -> Iterator[str]:
    """The SVG cut into its groups (``<g`` … ``</g>``, several lines) and its other lines."""
    lines = svg.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("<g "):
            end = lines.index("</g>", i)
            yield "\n".join(lines[i : end + 1])
            i = end + 1
        else:
            yield lines[i]
            i += 1


def golden_text(name: str) -> str:
    """The readable record of preset ``name``'s pictures (the rules in the module docstring).

    A picture is titled with the preset's name alone: the step and the era are in the heading
    above it, and a title that changed at every step would make every step differ."""
    out = [
        f"# {name}: its picture at every step under each frozen era, as app.picture.svg draws it.",
        "# Recorded by `python -m tests.app.pictures_v1 --write`; read the module's docstring.",
    ]
    # Where each group was first drawn, and the first lines of the groups of each picture.
    first_drawn: dict[str, str] = {}
    heads_at: dict[str, list[str]] = {}
    previous: list[str] = []
    previous_era = ""
    for policy in FROZEN_ERAS:
        r = run(PRESETS[name].text, policy)
        pictures = [str(draw(picture(r, k, name).scene)) for k in range(r.last + 1)]
        k = 0
        while k < len(pictures):
            same = k
            while same < min(len(pictures), len(previous)) and pictures[same] == previous[same]:
                same += 1
            if same > k:
                steps = f"step {k}" if same == k + 1 else f"steps {k}–{same - 1}"
                out.append(f"## {policy} {steps}: drawn as under {previous_era}")
                k = same
                continue
            where = f"{policy} step {k}"
            out.append(f"## {where}")
            chunks = list(_chunks(pictures[k]))
            heads = [chunk.split("\n", 1)[0] for chunk in chunks if chunk.startswith("<g ")]
            heads_at[where] = heads
            for chunk in chunks:
                head = chunk.split("\n", 1)[0]
                seen = first_drawn.get(chunk)
                if seen is not None and heads_at[seen].count(head) == 1:
                    out.append(head + SAME_AS + seen)
                else:
                    out.append(chunk)
                    if chunk.startswith("<g "):
                        first_drawn.setdefault(chunk, where)
            k += 1
        previous, previous_era = pictures, policy
    return "\n".join(out) + "\n"


def golden_path(name: str) -> Path:
    return GOLDEN / f"{name}.txt"


def recorded() -> list[str]:
    """The presets whose pictures are on file."""
    return sorted(path.stem for path in GOLDEN.glob("*.txt"))


def difference(name: str) -> str:
    """A unified diff from the recorded pictures of ``name`` to today's; empty when equal."""
    path = golden_path(name)
    was = path.read_text(encoding="utf-8") if path.exists() else ""
    now = golden_text(name)
    return "".join(
        difflib.unified_diff(
            was.splitlines(keepends=True),
            now.splitlines(keepends=True),
            fromfile=f"{path.name} (recorded)",
            tofile=f"{path.name} (drawn today)",
        )
    )


def main(argv: list[str]) -> int:
    names = base_page_presets()
    if "--write" in argv:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for stale in set(recorded()) - set(names):
            golden_path(stale).unlink()
        for name in names:
            golden_path(name).write_text(golden_text(name), encoding="utf-8")
        return 0
    diffs = [d for d in map(difference, names) if d]
    sys.stdout.writelines(diffs)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
