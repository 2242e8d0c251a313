"""Templates: one Jinja environment, and rendering of a whole page or of named blocks.

A page template names the regions htmx swaps as blocks (jinja2-fragments renders one block of a
template with the page's context). An htmx request gets the block of the region it targets,
then the regions that change with it as htmx 4 ``<hx-partial>`` elements.

Much of what a step shows was already on screen at the step before — the timeline, most
buttons, most table rows — and the view model hands out the very same objects for it
(`Run.derive`, memoised builders). Those are drawn by their macro once (`app.once`) and
joined in Python, which is most of what makes a step cheap to render.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from jinja2_fragments import render_block
from markupsafe import Markup
from starlette.requests import Request

from app.actions import ActionGroup
from app.errors import ErrorView
from app.once import DrawnOnce
from app.paths import HTMX_FILE, TEMPLATES_DIR
from app.sim import Stage, TimelineEntry
from app.svg import draw
from app.tables import FrameRow, PteRow, RefRow

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
    stepbar=_MACROS.stepbar,  # type: ignore[attr-defined]
    verdict_badge=_MACROS.verdict_badge,  # type: ignore[attr-defined]
)

# A run's timeline entries are built once (`Run.derive`) and drawn once as the current step and
# once as another, whichever step is current: a step joins what is drawn.
_TIMELINE_ENTRY = _MACROS.timeline_entry  # type: ignore[attr-defined]
_timeline_current: DrawnOnce[TimelineEntry] = DrawnOnce(lambda entry: _TIMELINE_ENTRY(entry, True))
_timeline_other: DrawnOnce[TimelineEntry] = DrawnOnce(lambda entry: _TIMELINE_ENTRY(entry, False))


def timeline(entries: Sequence[TimelineEntry], current: int) -> Markup:
    """``entries`` (consecutive steps, the current one among them) as the timeline's items."""
    at = current - entries[0].index if entries else -1
    if not 0 <= at < len(entries) or entries[at].index != current:
        return Markup(_timeline_other.join(entries, "\n"))
    parts = (
        _timeline_other.join(entries[:at], "\n"),
        _timeline_current(entries[at]),
        _timeline_other.join(entries[at + 1 :], "\n"),
    )
    return Markup("\n".join(part for part in parts if part))


# Groups of buttons and table rows: most are the same objects from step to step (app.actions
# and app.tables memoise them on the state they show), so each is drawn once by its macro.
_DRAWN: dict[type, DrawnOnce[Any]] = {
    ActionGroup: DrawnOnce(_MACROS.action_group),  # type: ignore[attr-defined]
    PteRow: DrawnOnce(_MACROS.pte_row),  # type: ignore[attr-defined]
    FrameRow: DrawnOnce(_MACROS.frame_row),  # type: ignore[attr-defined]
    RefRow: DrawnOnce(_MACROS.ref_row),  # type: ignore[attr-defined]
}


def drawn(items: Sequence[object]) -> Markup:
    """``items`` (all of one type drawn by `_DRAWN`), one after the other."""
    if not items:
        return Markup("")
    return Markup(_DRAWN[type(items[0])].join(items))


class DrawnStage(NamedTuple):
    """A step's parts that are joined from pieces drawn before, or drawn by a macro called
    from here: the route hands them to the template as ``parts``, because every call made
    from inside a template costs several microseconds more than the same call from Python."""

    picture: Markup
    actions: Markup
    ptes: Markup
    frames: Markup
    refs: Markup
    events: Markup
    stepbar: Markup


_event_list = DrawnOnce(_MACROS.event_list)  # type: ignore[attr-defined]


def draw_stage(stage: Stage) -> DrawnStage:
    table = stage.table
    return DrawnStage(
        draw(stage.scene),
        drawn(stage.actions),
        drawn(table.ptes),
        drawn(table.frames),
        drawn(table.refs),
        # A step's events are the run's (`Run.events`): the same tuple whenever it is shown.
        _event_list(stage.events),
        _MACROS.stepbar(stage.nav, stage.command, "", stage.title),  # type: ignore[attr-defined]
    )


ENV.globals.update(
    timeline=timeline,
    event_list=_event_list,
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


_LOADED: dict[str, tuple[Template, dict[str, Any]]] = {}


def _loaded(name: str) -> tuple[Template, dict[str, Any]]:
    """A page template and the globals it sees (all set at import, before any request)."""
    if name not in _LOADED:
        template = ENV.get_template(name)
        _LOADED[name] = template, dict(template.globals)
    return _LOADED[name]


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
    template, template_globals = _loaded(name)
    # `shared=True`: the variables are the context as given, so the template's globals are
    # merged in here, from a plain dict (Jinja merges them from a ChainMap, key by key).
    shared = template.new_context({**template_globals, **context}, shared=True)
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
