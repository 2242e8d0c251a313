"""Templates: one Jinja environment, and rendering of a whole page or of named blocks.

A page template names the regions htmx swaps as blocks (jinja2-fragments renders one block of a
template with the page's context). Regions other than the swap target travel as htmx 4
``<hx-partial>`` elements, each swapped into its own id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from jinja2_fragments import render_block

from app.paths import HTMX_FILE, TEMPLATES_DIR

# StrictUndefined: a template that reads a name the route did not provide fails in tests
# instead of silently drawing nothing.
ENV = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    # Templates ship with the package and never change under a running server: skip the
    # per-render stat() that checks whether they did (five per step request).
    auto_reload=False,
)
# Verdict icons: each drawn by DejaVu Sans (Debian's default), so none falls back to a box.
ENV.globals.update(
    htmx_file=HTMX_FILE,
    verdict_icons={
        "leak": "⚠",
        "stale": "≠",
        "userfault": "⚑",
        "file-corrupted": "✎",
        "segv": "✖",
        "needless-copy": "❐",
    },
)

# The shared macros are globals rather than `{% from %}` imports: jinja2-fragments renders a
# block without running its template's top-level code, where such an import would sit.
_MACROS = ENV.get_template("_macros.html").module
ENV.globals.update(
    stepbar=_MACROS.stepbar,  # type: ignore[attr-defined]
    event_list=_MACROS.event_list,  # type: ignore[attr-defined]
    verdict_badge=_MACROS.verdict_badge,  # type: ignore[attr-defined]
)


def render_page(name: str, context: Mapping[str, Any]) -> str:
    return ENV.get_template(name).render(context)


def render_fragment(
    name: str, context: Mapping[str, Any], main: str, partials: Sequence[str] = ()
) -> str:
    """Block ``main`` for the swap target, then each of ``partials`` as an ``<hx-partial>``.

    A partial block ``x`` is swapped into the element ``#x`` (innerHTML), which the full page
    wraps around the same block.
    """
    parts = [render_block(ENV, name, main, dict(context))]
    for block in partials:
        inner = render_block(ENV, name, block, dict(context))
        parts.append(f'<hx-partial hx-target="#{block}" hx-swap="innerHTML">{inner}</hx-partial>')
    return "\n".join(parts)


def render_svg(scene_context: Mapping[str, Any]) -> str:
    return ENV.get_template("diagram.svg").render(scene_context)
