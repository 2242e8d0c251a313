"""Base-page presets are drawn byte for byte as before folios were (tests/app/pictures_v1.py)."""

from __future__ import annotations

import pytest

from tests.app.pictures_v1 import base_page_presets, load, picture_digest

KNOWN = load()


def test_every_digest_names_a_base_page_preset() -> None:
    # A preset renamed or removed would silently drop out of the comparison below.
    assert set(KNOWN) <= set(base_page_presets())


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_base_page_picture_is_unchanged(name: str) -> None:
    assert picture_digest(name) == KNOWN[name]
