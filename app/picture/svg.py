"""A scene (`app.picture.scene`) as SVG markup, drawn by plain Python as python-chess's
``chess.svg`` draws its board.

Every step request draws a picture of a few hundred elements, almost all of them numbers and
colours that `app.picture.scene` computed. Drawn by a template loop, that cost more than the rest of
the step (a template makes several calls per attribute); here each element is one f-string.

Strings that can hold what a user typed — titles, texts, class lists, keys — are escaped;
numbers are printed with ``:g`` (six significant digits, ``16`` rather than ``16.0``: the
picture is far smaller than a million pixels), and colours and dash patterns are constants of
`app.picture.shapes`, which never hold a user's text.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from app.picture.shapes import Group, Path, Poly, Rect, Scene, Text


def _rect(rect: Rect) -> str:
    extra = ""
    if rect.dash:
        extra += f' stroke-dasharray="{rect.dash}"'
    if rect.opacity != 1:
        extra += f' fill-opacity="{rect.opacity:g}"'
    return (
        f'<rect x="{rect.x:g}" y="{rect.y:g}" width="{rect.w:g}" height="{rect.h:g}"'
        f' rx="{rect.rx:g}" fill="{rect.fill}" stroke="{rect.stroke}"'
        f' stroke-width="{rect.stroke_width:g}"{extra}/>'
    )


def _text(text: Text) -> str:
    extra = ""
    if text.weight != "normal":
        extra += f' font-weight="{text.weight}"'
    if text.anchor != "start":
        extra += f' text-anchor="{text.anchor}"'
    if text.cls:
        extra += f' class="{escape(text.cls)}"'
    return (
        f'<text x="{text.x:g}" y="{text.y:g}" font-size="{text.size:g}"'
        f'{extra} fill="{text.fill}">{escape(text.text)}</text>'
    )


def _path(path: Path) -> str:
    dash = f' stroke-dasharray="{path.dash}"' if path.dash else ""
    return (
        f'<path d="{path.d}" fill="none" stroke="{path.stroke}"'
        f' stroke-width="{path.width:g}"{dash}/>'
    )


def _poly(poly: Poly) -> str:
    return f'<polygon points="{poly.points}" fill="{poly.fill}"/>'


_DRAW = {Rect: _rect, Text: _text, Path: _path, Poly: _poly}


def draw_group(group: Group) -> str:
    key = f' data-key="{escape(group.key)}"' if group.key else ""
    items = "\n".join(_DRAW[type(item)](item) for item in group.items)  # type: ignore[operator]
    return (
        f'<g class="{escape(group.cls)}"{key}><title>{escape(group.title)}</title>\n{items}\n</g>'
    )


def draw(scene: Scene) -> Markup:
    """The ``<svg>`` element, ready to go inline in a page or alone in a ``.svg`` file."""
    width, height = f"{scene.width:g}", f"{scene.height:g}"
    title = escape(scene.title)
    desc = escape(scene.desc)
    groups = "\n".join(map(draw_group, scene.groups))
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="diagram" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" font-family="{escape(scene.font)}" role="img"'
        f' aria-label="{title}. {desc}">\n<title>{title}</title>\n<desc>{desc}</desc>\n'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#FFFFFF"/>\n'
        f"{groups}\n</svg>"
    )
