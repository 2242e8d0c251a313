"""A step's picture as PNG, for slide tools that cannot import SVG (`/export.png`).

Rendered on the server from the same SVG as `/export.svg`, without a browser: CairoSVG
(Kozea, over Debian's libcairo2) draws the plain shapes and text our SVG uses. Measured on this
machine (loaded by other jobs): 75–145 ms for the CVE preset's step at twice its natural size,
90 ms for the last step of a 1,000-command scenario (its focused picture), so the route runs it on
the thread pool (a download, never on the step path), and the size is bounded in pixels so a
picture of the largest allowed scenario cannot make a huge bitmap.
"""

from __future__ import annotations

import cairosvg

# Twice the natural size: sharp on a projector and a retina slide. A 4096-pixel cap on the
# long side bounds memory (4096 × 4096 × 4 bytes = 64 MB at worst; pictures are wide and short).
SCALE = 2.0
MAX_SIDE = 4096


def svg_to_png(svg: str, width: float, height: float) -> bytes:
    """``svg`` (of natural size ``width`` × ``height``) as PNG bytes."""
    scale = min(SCALE, MAX_SIDE / max(width, height, 1.0))
    png: bytes = cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=scale)
    return png
