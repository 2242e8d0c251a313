"""The drawing primitives of the diagram, its palette and its font.

A scene is a tree of plain frozen dataclasses (`Scene` → `Group` → items) styled by SVG
presentation attributes rather than CSS, so the same markup is correct inline under a strict CSP
and as a stand-alone ``.svg`` download (`app.picture.svg` draws it). Colours are the Okabe–Ito
palette, which stays distinguishable under the common colour-vision deficiencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Okabe & Ito (2008), "Color Universal Design": safe for protanopia, deuteranopia, tritanopia.
BLACK = "#000000"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#767676"  # 4.5:1 on white: still readable text for "ghost" items
VERM_TEXT = "#9E3F00"  # vermillion darkened to 7:1 for text; the pure hue is for strokes
PROC_COLORS = (BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION)

FONT = "DejaVu Sans, Verdana, Arial, sans-serif"


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str = "#FFFFFF"
    stroke: str = BLACK
    stroke_width: float = 2.0
    dash: str = ""
    rx: float = 6.0
    opacity: float = 1.0
    kind: Literal["rect"] = "rect"


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float
    text: str
    size: float = 16.0
    weight: str = "normal"
    anchor: Literal["start", "middle", "end"] = "start"
    fill: str = BLACK
    kind: Literal["text"] = "text"
    # What the text says, for CSS: presentation mode enlarges the deciding counters and the
    # reference labels beyond what the boxes' natural size holds.
    cls: str = ""


@dataclass(frozen=True, slots=True)
class Path:
    d: str
    stroke: str = BLACK
    width: float = 3.0
    dash: str = ""
    kind: Literal["path"] = "path"


@dataclass(frozen=True, slots=True)
class Poly:
    points: str
    fill: str = BLACK
    kind: Literal["poly"] = "poly"


Item = Rect | Text | Path | Poly


@dataclass(frozen=True, slots=True)
class Group:
    """One thing in the picture (a frame, a page-table row, an arrow …) with its tooltip.

    ``cls`` is a space-separated class list that names what it is and its condition
    (``ref stale``, ``frame changed``); tests and CSS select on it, colour never carries it alone.
    """

    cls: str
    title: str
    items: tuple[Item, ...]
    key: str = ""


@dataclass(frozen=True, slots=True)
class Scene:
    width: float
    height: float
    title: str
    desc: str
    groups: tuple[Group, ...]
    font: str = FONT
