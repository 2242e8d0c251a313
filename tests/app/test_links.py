"""Share links: readable and compressed forms, bounds, and every way a link can be unreadable."""

from __future__ import annotations

import base64
import zlib
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.views.links import (
    READABLE_LIMIT,
    LinkError,
    decode_scenario,
    encode_scenario,
    make_link,
    parse_params,
)
from engine.limits import MAX_DECOMPRESSED_BYTES, MAX_LINK_SCENARIO_BYTES


def query_of(link: str) -> dict[str, str]:
    """What a server sees: the query string decoded the way Starlette decodes it."""
    return dict(parse_qsl(urlsplit(link).query, keep_blank_values=True))


def z_of(data: bytes) -> str:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = comp.compress(data) + comp.flush()
    return "z:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_short_scenario_link_is_readable() -> None:
    link = make_link("/", "P mmap a;P fork C;C write a", policy="5.7", step=2)
    assert link == "/?v=1&s=P+mmap+a;P+fork+C;C+write+a&policy=5.7&step=2"


def test_plus_in_a_value_survives_the_readable_form() -> None:
    text = "P mmap a;P write a x+y"
    assert parse_params(query_of(make_link("/", text))).text == text


def test_long_scenario_switches_to_the_z_form_and_round_trips() -> None:
    text = ";".join(f"P write a v{i}" for i in range(300))
    s = encode_scenario(text)
    assert s.startswith("z:")
    assert len(s) < READABLE_LIMIT
    assert parse_params(query_of(make_link("/", text))).text == text


def test_text_that_starts_like_the_z_form_is_never_taken_for_it() -> None:
    assert encode_scenario("z:abc").startswith("z:") and encode_scenario("z:abc") != "z:abc"
    assert decode_scenario(encode_scenario("z:abc")) == "z:abc"


@given(st.text(max_size=3000))
def test_any_text_round_trips_through_a_link(text: str) -> None:
    link = make_link("/", text, policy="5.19", step=3)
    params = parse_params(query_of(link))
    assert params.text == text
    assert params.policy == "5.19"
    assert params.step == 3


def test_decompression_stops_at_the_limit() -> None:
    # A deflate stream of 10 MB of spaces is a few KB: it must not be inflated.
    bomb = z_of(b" " * (10 * 1024 * 1024))
    assert len(bomb) < MAX_LINK_SCENARIO_BYTES
    with pytest.raises(LinkError, match="expands beyond"):
        decode_scenario(bomb)


def test_decompressed_text_at_the_limit_is_accepted() -> None:
    text = "P mmap a\n" * (MAX_DECOMPRESSED_BYTES // 9)
    assert decode_scenario(z_of(text.encode())) == text


@pytest.mark.parametrize(
    ("s", "message"),
    [
        ("z:!!!!", "not base64url"),
        ("z:" + base64.urlsafe_b64encode(b"not deflate at all").decode(), "not deflate"),
        (z_of(b"P mmap a;P write a")[:-4], "ends early"),
        (z_of("é".encode("latin-1")), "UTF-8"),
    ],
)
def test_broken_z_forms_say_what_is_wrong(s: str, message: str) -> None:
    with pytest.raises(LinkError, match=message) as info:
        decode_scenario(s)
    assert info.value.param == "s"


def test_oversized_s_is_refused_before_decoding() -> None:
    with pytest.raises(LinkError, match="at most"):
        decode_scenario("P mmap a;" * (MAX_LINK_SCENARIO_BYTES // 9 + 1))


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"v": "2", "s": "P mmap a"}, "v"),
        ({"step": "three"}, "step"),
        ({"step": "-1"}, "step"),
        ({"step": "99999999999"}, "step"),
    ],
)
def test_unreadable_parameters_name_themselves(query: dict[str, str], param: str) -> None:
    with pytest.raises(LinkError) as info:
        parse_params(query)
    assert info.value.param == param


def test_missing_version_reads_as_v1_and_unknown_view_is_ignored() -> None:
    params = parse_params({"s": "P mmap a", "view": "sideways"})
    assert params.text == "P mmap a"
    assert params.view == "normal"


def test_policies_list_is_split_and_trimmed() -> None:
    assert parse_params({"policies": "5.7, 6.2,,"}).policies == ("5.7", "6.2")


def test_a_lesson_travels_readable_one_line_each_and_decodes_to_the_same_text() -> None:
    text = "#title T\n#policy 5.7\nP mmap a  # the page\n#? q\nP read a"
    link = make_link("/", text, policy="5.7")
    assert link == (
        "/?v=1&s=%23title+T%0A%23policy+5.7%0AP+mmap+a++%23+the+page%0A%23%3F+q%0AP+read+a"
        "&policy=5.7"
    )
    query = dict(parse_qsl(urlsplit(link).query))
    assert parse_params(query).text == text
