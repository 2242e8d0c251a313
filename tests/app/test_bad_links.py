"""Links the server cannot read: a 4xx page that says what and where, and keeps the user's text."""

from __future__ import annotations

import base64
import zlib
from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.testclient import TestClient

from engine.policies import POLICIES
from engine.syntax import parse
from tests.app.conftest import first, html, hx

BROKEN = "P mmap a\nP write a\nP frok C\nC write a"


def test_syntax_error_page_names_line_column_expected_and_found(client: TestClient) -> None:
    r = client.get("/", params={"v": "1", "s": BROKEN, "policy": "5.7"})
    assert r.status_code == 400
    doc = html(r.text)
    where = dict(
        zip(
            [dt.text() for dt in doc.css(".where dt")],
            [dd.text() for dd in doc.css(".where dd")],
            strict=True,
        )
    )
    assert where["line"] == "3"
    assert where["column"] == "3"
    assert "fork" in where["expected"]
    assert "frok" in where["found"]
    assert "P frok C" in first(doc, ".excerpt").text()


def test_syntax_error_keeps_the_users_text_verbatim(client: TestClient) -> None:
    r = client.get("/", params={"s": BROKEN})
    assert first(html(r.text), "textarea[name=s]").text() == BROKEN


def test_syntax_error_offers_the_scenario_up_to_the_bad_line(client: TestClient) -> None:
    doc = html(client.get("/", params={"s": BROKEN, "policy": "5.7"}).text)
    link = first(doc, ".ways a").attributes["href"] or ""
    q = dict(parse_qsl(urlsplit(link).query))
    assert q["policy"] == "5.7"
    assert len(parse(q["s"]).commands) == 2
    assert client.get(link).status_code == 200


def test_up_to_the_bad_command_on_a_single_line_link(client: TestClient) -> None:
    doc = html(client.get("/", params={"s": "P mmap a;P write a;P frok C"}).text)
    link = first(doc, ".ways a").attributes["href"] or ""
    assert dict(parse_qsl(urlsplit(link).query))["s"] == "P mmap a;P write a"


def test_htmx_submission_with_an_error_swaps_the_simulator_region(client: TestClient) -> None:
    r = client.get("/", params={"v": "1", "s": BROKEN}, headers=hx("sim"))
    assert r.status_code == 400
    assert r.headers["HX-Retarget"] == "#sim"
    assert "<html" not in r.text
    doc = html(r.text)
    assert doc.css_first(".problem") is not None
    assert first(doc, "textarea[name=s]").text() == BROKEN
    # The error is announced in the live region, and the link that shows it is pushed.
    narration = [p for p in doc.css("hx-partial") if p.attributes["hx-target"] == "#narration"]
    assert "syntax error" in narration[0].text()
    assert "frok" in (r.headers["HX-Push-Url"] or "")


def test_error_from_a_step_request_is_retargeted_to_the_whole_region(client: TestClient) -> None:
    r = client.get("/", params={"s": "P mmap a", "policy": "4.2"}, headers=hx("stage"))
    assert r.status_code == 400
    assert r.headers["HX-Retarget"] == "#sim"


def test_unknown_policy_lists_the_known_ones_as_links(client: TestClient) -> None:
    r = client.get("/", params={"s": "P mmap a", "policy": "4.2"})
    assert r.status_code == 400
    doc = html(r.text)
    assert "4.2" in first(doc, ".problem .what").text()
    links = [a.attributes["href"] or "" for a in doc.css(".ways a[href^='/?']")]
    assert {dict(parse_qsl(urlsplit(h).query))["policy"] for h in links} == set(POLICIES)
    assert first(doc, "textarea[name=s]").text() == "P mmap a"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"v": "7", "s": "P mmap a"}, "v"),
        ({"s": "P mmap a", "step": "last"}, "step"),
        ({"s": "z:%%%%"}, "s"),
    ],
)
def test_unreadable_parameter_page_names_it(
    client: TestClient, params: dict[str, str], param: str
) -> None:
    r = client.get("/", params=params)
    assert r.status_code == 400
    doc = html(r.text)
    assert f"“{param}”" in first(doc, ".problem h2").text()
    assert first(doc, "textarea[name=s]").text() == params["s"]


def test_zip_bomb_link_is_refused_cheaply(client: TestClient) -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = comp.compress(b"P read a\n" * 500_000) + comp.flush()  # 4.5 MB in ~12 KB
    s = "z:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    r = client.get("/", params={"s": s})
    assert r.status_code == 413
    assert "expands beyond" in r.text


def test_scenario_over_the_command_limit_is_a_4xx_page(client: TestClient) -> None:
    text = "P mmap a\n" + "P read a\n" * 1000
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = comp.compress(text.encode()) + comp.flush()
    r = client.get("/", params={"s": "z:" + base64.urlsafe_b64encode(raw).decode()})
    assert r.status_code == 413
    assert "1000" in r.text or "1,000" in r.text


def test_unknown_path_is_an_html_page_not_json(client: TestClient) -> None:
    r = client.get("/nowhere")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "/nowhere" in first(html(r.text), ".problem").text()


@pytest.mark.parametrize("path", ["/compare", "/embed", "/export.svg"])
def test_other_views_answer_bad_links_with_a_page_too(client: TestClient, path: str) -> None:
    r = client.get(path, params={"s": BROKEN})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    assert "line" in r.text and "frok" in r.text
