"""The diagram of one step: geometry computed in Python, drawn as SVG.

- `shapes` — the drawing primitives (`Scene` → `Group` → items), the palette and the font;
- `layout` — a fixed place for everything the trace ever shows, and the focus of big traces;
- `labels` — the words on the picture (flags, counters, headings), shared with the tables;
- `scene` — one step's picture: the layout filled with the step's state, changes marked;
- `svg` — a scene as SVG markup.

A module imports only those above it in this list. May import the engine's state and
events only: nothing of the web, the views or the CLI (tests/app/test_layering.py checks).
"""
