"""The projector's QR code: segno draws it as SVG, on the server, with no outside service."""

from __future__ import annotations

import io

import segno
from markupsafe import Markup


def qr_svg(url: str, title: str) -> Markup:
    """An inline ``<svg>`` of ``url`` that scales with its box (no fixed size, a viewBox).

    Error correction "M" survives a phone camera at an angle across a lecture hall; the quiet
    zone (border 4) is what scanners need around the code.
    """
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(
        out,
        kind="svg",
        xmldecl=False,
        svgns=True,
        omitsize=True,
        border=4,
        title=title,
        svgclass="qr",
        lineclass=None,
        dark="#000",
        light="#fff",
    )
    return Markup(out.getvalue().decode())
