"""Hostile input, end to end: random and mutated links never break the server or the page.

The parser itself is fuzzed in tests/engine/test_syntax.py. Here the whole path a link takes
is: the link decoder raises nothing but `LinkError`; a link built from random or mutated text
(readable or ``z:``) is answered with a page or a 4xx that says why — never a 5xx, never an
exception; and markup put anywhere a user can put text reaches the page only escaped.
"""

from __future__ import annotations

import base64
import zlib
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from app.http.main import create_app
from app.views.links import LinkError, decode_scenario, encode_scenario, make_link, parse_params
from engine.policies import POLICIES
from engine.presets import PRESETS
from engine.syntax import canonical_text, parse
from tests.app.asgi import Answer, send

APP = create_app()
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PRESET_TEXTS = [canonical_text(parse(p.text)) for p in PRESETS.values()]
HTMX = {"HX-Request": "true", "HX-Request-Type": "partial", "HX-Target": "div#stage"}
# What an answer to any link may be: the page, or a 4xx page that says why.
ANSWERS = {200, 400, 413, 414}
SENTINEL = "x-evil"
MARKUP = [
    f"<{SENTINEL}>",
    f'"><{SENTINEL} onerror=alert(1)>',
    f"'><{SENTINEL}/>",
    f"</textarea><{SENTINEL}>",
    f"<![CDATA[<{SENTINEL}>]]>",
    f"--><{SENTINEL}>",
]


def z_form(data: bytes) -> str:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return "z:" + base64.urlsafe_b64encode(comp.compress(data) + comp.flush()).decode()


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    """A preset's link text with a few characters deleted, inserted or swapped."""
    text = draw(st.sampled_from(PRESET_TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "insert", "swap"]))
        if op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 8)) :]
        elif op == "insert":
            text = text[:at] + draw(st.text(max_size=6)) + text[at:]
        elif at + 1 < len(text):
            text = text[:at] + text[at + 1] + text[at] + text[at + 2 :]
    return text


@st.composite
def mutated_z_form(draw: st.DrawFn) -> str:
    """The z: form of a preset, then cut short or with bytes changed."""
    s = encode_scenario(draw(st.sampled_from(PRESET_TEXTS)))
    if not s.startswith("z:"):
        s = z_form(s.encode())
    payload = bytearray(s[2:].encode())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(payload) - 1))
        payload[at] = draw(st.sampled_from(b"AZaz09-_=+/!"))
    cut = draw(st.integers(1, len(payload)))
    return "z:" + payload[:cut].decode()


any_s = st.one_of(
    st.text(max_size=300),
    mutated_text(),
    mutated_z_form(),
    st.binary(max_size=300).map(z_form),
    st.binary(max_size=200).map(lambda b: "z:" + base64.urlsafe_b64encode(b).decode()),
)
query_values = st.one_of(st.none(), st.text(max_size=20), st.sampled_from([*POLICIES, "latest"]))


def check_answer(answer: Answer) -> LexborHTMLParser:
    assert answer.status in ANSWERS, (answer.status, answer.text[:300])
    assert answer.headers["content-type"].startswith("text/html")
    doc = LexborHTMLParser(answer.text)
    if answer.status != 200:
        assert doc.css_first(".problem") is not None, "a refusal says why"
    return doc


# ------------------------------------------------------------------------ the decoder


@FUZZ
@given(s=any_s, step=query_values, v=query_values, view=query_values, policies=query_values)
def test_the_link_decoder_raises_only_link_errors(
    s: str, step: str | None, v: str | None, view: str | None, policies: str | None
) -> None:
    query = {"s": s, "step": step, "v": v, "view": view, "policies": policies}
    try:
        params = parse_params({k: val for k, val in query.items() if val is not None})
    except LinkError as exc:
        assert exc.param in {"s", "step", "v", "policies"}
        assert exc.status in {400, 413, 414}
        return
    assert params.step is None or params.step >= 0


@FUZZ
@given(st.binary(max_size=2000))
def test_any_deflate_stream_decodes_to_its_text_or_a_link_error(data: bytes) -> None:
    try:
        text = decode_scenario(z_form(data))
    except LinkError as exc:
        assert exc.param == "s"
        return
    assert text.encode() == data


# ------------------------------------------------------------------------ the pages


@FUZZ
@given(s=any_s, policy=query_values, step=query_values, partial=st.booleans())
def test_any_link_gets_a_page_or_a_4xx_that_says_why(
    s: str, policy: str | None, step: str | None, partial: bool
) -> None:
    query = {"v": "1", "s": s, "policy": policy, "step": step}
    encoded = urlencode({k: val for k, val in query.items() if val is not None})
    answer = send(APP, "GET", "/", query=encoded, headers=HTMX if partial else None)
    check_answer(answer)


@FUZZ
@given(s=st.one_of(mutated_text(), mutated_z_form()), path=st.sampled_from(["/compare", "/embed"]))
def test_other_views_answer_mutated_links_too(s: str, path: str) -> None:
    check_answer(send(APP, "GET", path, query=urlencode({"v": "1", "s": s})))


@FUZZ
@given(text=mutated_text(), add=st.text(max_size=40))
def test_an_action_with_any_command_gets_a_page_or_a_4xx(text: str, add: str) -> None:
    answer = send(APP, "GET", "/", query=urlencode({"v": "1", "s": text, "add": add}), headers=HTMX)
    check_answer(answer)


# ------------------------------------------------------------------------ markup


@st.composite
def markup_links(draw: st.DrawFn) -> tuple[str, str]:
    """(path, query) with markup in one place a user controls: a comment, a command, a
    parameter, an added command, the policy list."""
    base = draw(st.sampled_from(PRESET_TEXTS))
    markup = draw(st.sampled_from(MARKUP))
    where = draw(st.sampled_from(["comment", "command", "policy", "step", "add", "policies"]))
    params = {"v": "1", "s": base, "policy": "5.7"}
    if where == "comment":
        params["s"] = base.replace(";", f" # {markup}\n", 1)
    elif where == "command":
        at = draw(st.integers(0, len(base)))
        params["s"] = base[:at] + markup + base[at:]
    elif where == "add":
        params["add"] = f"P write a {markup}"
    else:
        params[where] = markup
    if draw(st.booleans()):
        params["s"] = encode_scenario(params["s"])
    path = "/compare" if where == "policies" else draw(st.sampled_from(["/", "/embed"]))
    return path, urlencode(params)


@FUZZ
@given(markup_links(), st.booleans())
def test_markup_anywhere_in_a_link_reaches_the_page_only_as_text(
    link: tuple[str, str], partial: bool
) -> None:
    path, query = link
    answer = send(APP, "GET", path, query=query, headers=HTMX if partial else None)
    doc = check_answer(answer)
    assert doc.css(SENTINEL) == [], "markup from the link became an element"
    for node in doc.css("*"):
        assert not any(name.startswith("on") for name in node.attributes), node.tag
    assert f"<{SENTINEL}" not in answer.text


def test_markup_in_a_comment_is_shown_escaped_in_the_editor() -> None:
    text = f"P mmap a # <{SENTINEL}>\nP write a x"
    answer = send(APP, "GET", "/", query="s=" + quote(text))
    doc = check_answer(answer)
    assert answer.status == 200
    assert not doc.css(SENTINEL)


def test_markup_in_an_export_link_never_reaches_the_svg() -> None:
    link = make_link("/export.svg", PRESET_TEXTS[0], policy="5.7")
    answer = send(APP, "GET", "/export.svg", query=link.partition("?")[2] + f"&x=<{SENTINEL}>")
    assert answer.status == 200
    assert f"<{SENTINEL}" not in answer.text
    bad = send(APP, "GET", "/export.svg", query=urlencode({"s": f"P <{SENTINEL}> a"}))
    assert bad.status == 400
    assert f"<{SENTINEL}" not in bad.text
