"""How an error in text typed into the editor is worded.

A link's error page says "the scenario in this link": the reader did not write it. Text the
reader just typed is theirs, and the error says so ("in this scenario") — shown once, beside
the editor, while the picture of the last scenario that ran stays on screen.
"""

from __future__ import annotations

from dataclasses import replace

from app.views.errors import ErrorView

_TYPED_TITLES = {
    "The scenario in this link has a syntax error": "There is a syntax error in this scenario",
}


def editor_error(error: ErrorView) -> ErrorView:
    return replace(error, title=_TYPED_TITLES.get(error.title, error.title))
