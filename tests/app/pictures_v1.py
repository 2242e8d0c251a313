"""The base-page picture, frozen: a digest of every preset's SVG at every step under every era.

Huge pages (DESIGN.md §10) taught the picture to draw folios; a base-page scenario must still
be drawn byte for byte as before, so the SVGs a teacher exported and the slides made from them
stay true. tests/app/test_pictures_v1.py compares each base-page preset's digest with
tests/data/pictures_v1.json.

    python -m tests.app.pictures_v1            # list the presets whose picture changed
    python -m tests.app.pictures_v1 --write    # recompute the digests (a deliberate change)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from app.picture.svg import draw
from app.views.runs import run
from app.views.sim import picture
from engine.presets import PRESETS

DIGESTS = Path(__file__).resolve().parents[1] / "data" / "pictures_v1.json"
# The eras the digests were recorded under. An era added later draws its own pictures, which
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


def base_page_presets() -> list[str]:
    """The presets that map no huge page: their pictures must not change."""
    return [
        name
        for name, preset in PRESETS.items()
        if not any(marker in preset.text for marker in HUGE_MARKERS)
    ]


def picture_digest(name: str) -> str:
    """sha256 over the SVG of every step of preset ``name`` under every frozen era."""
    h = hashlib.sha256()
    for policy in FROZEN_ERAS:
        r = run(PRESETS[name].text, policy)
        for k in range(r.last + 1):
            h.update(draw(picture(r, k, f"{name} {policy} {k}").scene).encode())
    return h.hexdigest()


def svgs(name: str, policy: str) -> list[str]:
    """Every step's SVG of preset ``name`` under ``policy``, titled without the era."""
    r = run(PRESETS[name].text, policy)
    return [draw(picture(r, k, f"{name} {k}").scene) for k in range(r.last + 1)]


def load() -> dict[str, str]:
    digests: dict[str, str] = json.loads(DIGESTS.read_text())
    return digests


def main(argv: list[str]) -> int:
    computed = {name: picture_digest(name) for name in base_page_presets()}
    if "--write" in argv:
        DIGESTS.write_text(json.dumps(computed, indent=1, sort_keys=True) + "\n")
        return 0
    known = load()
    changed = [name for name, digest in computed.items() if known.get(name) != digest]
    for name in changed:
        print(name)
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
