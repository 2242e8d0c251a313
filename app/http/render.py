"""Templates: one Jinja environment, and rendering of a whole page or of named blocks.

A page template names the regions htmx swaps as blocks (jinja2-fragments renders one block of a
template with the page's context). An htmx request gets the block of the region it targets,
then the regions that change with it as htmx 4 ``<hx-partial>`` elements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from jinja2_fragments import render_block
from starlette.requests import Request

from app.paths import HTMX_FILE, TEMPLATES_DIR
from app.picture.svg import draw
from app.views.errors import ErrorView

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
    # Only the downloaded lesson (app.http.routes.offline) renders the page without a server.
    offline=False,
    draw_svg=draw,
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
    {
        name: getattr(_MACROS, name)
        for name in (
            "stepbar",
            "verdict_badge",
            "event_list",
            "timeline_entry",
            "action_group",
            "pte_row",
            "frame_row",
            "ref_row",
        )
    }
)


def render_page(name: str, context: Mapping[str, Any]) -> str:
    return ENV.get_template(name).render(context)


def render_error_page(request: Request, error: ErrorView) -> str:
    """The stand-alone error page (a 404, a refused request, a server failure): no scenario,
    links to the simulator and the comparison."""
    context = {
        "request": request,
        "page": "",
        "view": "normal",
        "error": error,
        "nav": {"home": "/", "compare": "/compare"},
        "policy_param": "latest",
        "share_url": "",
    }
    return render_page("error.html", context)


def render_fragment(
    name: str, context: Mapping[str, Any], main: str, partials: Sequence[str] = ()
) -> str:
    """Block ``main`` for the swap target, then each of ``partials`` as an ``<hx-partial>``.

    A partial block ``x`` is swapped into the element ``#x`` (innerHTML), which the full page
    wraps around the same block. One template context serves all the blocks: making a context
    costs as much as rendering a small block (jinja2-fragments makes one per block).
    """
    if not partials:
        return render_block(ENV, name, main, context)
    template = ENV.get_template(name)
    shared = template.new_context(dict(context))
    try:
        parts = [ENV.concat(template.blocks[main](shared))]
        for block in partials:
            inner = ENV.concat(template.blocks[block](shared))
            parts.append(
                f'<hx-partial hx-target="#{block}" hx-swap="innerHTML">{inner}</hx-partial>'
            )
    except Exception:
        ENV.handle_exception()  # the template's own line numbers in the traceback
    return "\n".join(parts)
