"""The JSON contract's bytes do not depend on which encoder wrote them: orjson's output, used
for speed, is exactly json's compact form without ASCII escaping."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.policies import POLICIES
from engine.presets import PRESETS
from engine.trace import _dumps, replay, traces_json_bytes


def json_bytes(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# Text as a scenario, a value or a remark may carry it: any character but a lone surrogate,
# which cannot be UTF-8 in either encoder.
texts = st.text(st.characters(exclude_categories=["Cs"]))
values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_the_encoder_writes_json_bytes(value: object) -> None:
    assert _dumps(value) == json_bytes(value)


@given(st.integers(2**64, 2**80) | st.integers(-(2**80), -(2**63) - 1))
def test_what_orjson_refuses_is_left_to_json(number: int) -> None:
    assert _dumps({"n": [number]}) == json_bytes({"n": [number]})


def test_every_preset_answers_json_bytes_under_every_era() -> None:
    for preset in PRESETS.values():
        for policy in POLICIES:
            trace = replay(preset.text, policy)
            for states in ("last", "changes"):
                answer = traces_json_bytes([trace], states)
                assert answer == json_bytes(json.loads(answer)), (preset.name, policy, states)
