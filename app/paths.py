"""Where the templates and static files are, in a wheel and in a checkout.

The wheel force-includes the repository's ``templates/`` and ``static/`` as ``app/templates`` and
``app/static`` (pyproject.toml); a checkout keeps them at the repository root. Trying the package
directory first means an installed cowlab never picks up a stray checkout's files.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _locate(name: str) -> Path:
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"cowlab cannot find its {name}/ directory next to {_PACKAGE_DIR}")


TEMPLATES_DIR = _locate("templates")
STATIC_DIR = _locate("static")
HTMX_FILE = "vendor/htmx-4.0.1.min.js"
