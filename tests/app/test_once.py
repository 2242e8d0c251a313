"""`app.once`: markup drawn once per object, values recalled by identity."""

from __future__ import annotations

from dataclasses import dataclass

from app.once import DrawnOnce, Recalled


@dataclass(frozen=True)
class Box:
    label: str


def counting_draw() -> tuple[list[str], DrawnOnce[Box]]:
    drawn: list[str] = []

    def draw(box: Box) -> str:
        drawn.append(box.label)
        return f"<b>{box.label}</b>"

    return drawn, DrawnOnce(draw)


def test_an_object_is_drawn_once_however_often_it_is_shown() -> None:
    drawn, memo = counting_draw()
    box = Box("a")
    assert memo(box) == "<b>a</b>"
    assert memo(box) == "<b>a</b>"
    assert memo.join([box, box], "|") == "<b>a</b>|<b>a</b>"
    assert drawn == ["a"]


def test_equal_objects_are_distinct_entries_but_draw_the_same() -> None:
    # Identity, not equality: two equal records are drawn once each (never mixed up).
    drawn, memo = counting_draw()
    assert memo.join([Box("a"), Box("a"), Box("b")]) == "<b>a</b><b>a</b><b>b</b>"
    assert sorted(drawn) == ["a", "a", "b"]


def test_join_draws_what_it_has_not_seen_and_keeps_the_order() -> None:
    drawn, memo = counting_draw()
    first, second, third = Box("1"), Box("2"), Box("3")
    memo(second)
    assert memo.join([first, second, third], ",") == "<b>1</b>,<b>2</b>,<b>3</b>"
    assert drawn == ["2", "1", "3"]
    assert memo.join([]) == ""


def test_a_full_memo_starts_again_and_stays_bounded() -> None:
    drawn, memo = counting_draw()
    memo.limit = 3
    boxes = [Box(str(i)) for i in range(10)]
    for box in boxes:
        memo(box)
    assert len(memo) <= 3
    assert memo(boxes[-1]) == "<b>9</b>"  # the newest entry survived the last clear
    assert drawn == [str(i) for i in range(10)]


def test_an_entry_keeps_its_object_alive_so_ids_are_never_confused() -> None:
    drawn, memo = counting_draw()
    for i in range(200):
        # Each box is dropped by the caller at once; were the memo not holding it, CPython
        # would reuse its address (its id) for the next box and serve the wrong markup.
        assert memo(Box(f"x{i}")) == f"<b>x{i}</b>"
    assert len(drawn) == 200


def test_recalled_computes_once_per_object_and_key() -> None:
    calls: list[tuple[str, int]] = []

    def compute(box: Box, key: int) -> str:
        calls.append((box.label, key))
        return box.label * key

    memo: Recalled[Box, int, str] = Recalled()
    box = Box("z")
    assert memo.get(box, 2, compute) == "zz"
    assert memo.get(box, 2, compute) == "zz"
    assert memo.get(box, 3, compute) == "zzz"
    assert memo.get(Box("z"), 2, compute) == "zz"
    assert calls == [("z", 2), ("z", 3), ("z", 2)]
