"""Poll choices come from the scenario and the engine, the same under every era."""

from __future__ import annotations

import pytest

from app.live import polls
from app.views.runs import run
from engine.policies import POLICIES
from engine.presets import PRESETS


def test_choices_are_the_zero_page_and_every_value_written_to_the_page_before_the_read() -> None:
    text = "P mmap a b;P write a one;P write b other;P fork C;C write a;P write a two;C read a"
    # `C write a` without a value writes `C:5`; `other` went to another page; `two` after fork.
    assert polls.choices(text, 7) == ("0", "one", "C:5", "two")


def test_a_read_through_a_reference_offers_the_device_and_cpu_writes_of_its_page() -> None:
    text = "P mmap a;P write a cpu;P pin a rw longterm as dev;dev write dma;P fork C;dev read"
    assert polls.choices(text, 6) == ("0", "cpu", "dma")


def test_a_file_page_offers_the_files_contents() -> None:
    text = "file F data;P mmap f file=F;P read f"
    assert polls.choices(text, 3) == ("0", "data")


def test_a_read_that_can_fault_offers_sigsegv_and_its_answer_is_sigsegv() -> None:
    text = "P mmap a;P write a x;P munmap a;P read a"
    assert polls.choices(text, 4) == ("0", "x", polls.FAULT)
    answer, why = polls.answer(text, "6.2", 4)
    assert answer == polls.FAULT
    assert "SIGSEGV" in why


def test_only_reads_take_a_poll() -> None:
    with pytest.raises(polls.NotARead):
        polls.choices("P mmap a;P write a x", 2)
    with pytest.raises(polls.NotARead):
        polls.answer("P mmap a;P write a x", "5.7", 0)


def test_every_presets_answer_under_every_era_is_among_its_choices() -> None:
    """The choices hold the answer whichever era the class looks at, so none gives it away
    by its absence."""
    checked = 0
    for preset in PRESETS.values():
        text = run(preset.text, "latest").link_text
        for step in range(1, run(text, "latest").last + 1):
            if not polls.is_read(run(text, "latest"), step):
                continue
            choices = polls.choices(text, step)
            for era in POLICIES:
                assert polls.answer(text, era, step)[0] in choices, (preset, step, era)
            checked += 1
    assert checked > 20
