"""Base-page presets are drawn byte for byte as before folios were (tests/app/pictures_v1.py)."""

from __future__ import annotations

import pytest

from engine.policies import POLICIES
from tests.app.pictures_v1 import (
    FROZEN_ERAS,
    GOLDEN,
    base_page_presets,
    difference,
    recorded,
    svgs,
)

RECORDED = recorded()


def test_every_recorded_file_names_a_base_page_preset() -> None:
    # A preset renamed or removed would silently drop out of the comparison below.
    assert RECORDED, f"no pictures recorded in {GOLDEN}"
    assert set(RECORDED) <= set(base_page_presets())


@pytest.mark.parametrize("name", RECORDED)
def test_base_page_picture_is_unchanged(name: str) -> None:
    diff = difference(name)
    if diff:
        pytest.fail(
            f"the pictures of {name} changed; if that is meant, record them with "
            f"`python -m tests.app.pictures_v1 --write` and say why in the commit:\n{diff}",
            pytrace=False,
        )


def test_the_frozen_eras_are_the_first_ones() -> None:
    assert tuple(POLICIES)[: len(FROZEN_ERAS)] == FROZEN_ERAS


@pytest.mark.parametrize("name", RECORDED)
@pytest.mark.parametrize("era", ["6.13", "6.15"])
def test_later_eras_draw_a_base_page_preset_as_6_2_does(name: str, era: str) -> None:
    # 1ced09e0331f (6.13) changes only a write to the huge zero page, 1da190f4d0a6 (6.15) only
    # what a large folio's write fault does: a base-page scenario must run, and be drawn,
    # exactly as under 6.2.
    assert svgs(name, era) == svgs(name, "6.2")
