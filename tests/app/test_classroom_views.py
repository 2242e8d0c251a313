"""What a class reads on the page, without a browser (issue 11): the text table's wording, the
decision drawn on the frame, preset links, PNG export, the editor's errors, the embed's range
and the verbs card."""

from __future__ import annotations

import struct
from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.testclient import TestClient

from app.views.reference import GLOSSARY, OTHER_LINES, PROCESS_VERBS, REFERENCE_VERBS
from engine.presets import PRESETS
from engine.syntax import PROC_VERBS, REF_VERBS
from tests.app.conftest import attr, first, html, hx, preset_link

LEAK = "cve-2020-29374"


def query(link: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(link).query))


def ref_status(client: TestClient, link: str) -> str:
    doc = html(client.get(link).text)
    table = next(t for t in doc.css(".state-text table") if "References" in t.text())
    return table.css("tbody tr")[0].css("td")[4].text()


def test_the_table_says_when_the_owner_has_unmapped_the_page_a_pipe_holds(
    client: TestClient,
) -> None:
    assert ref_status(client, preset_link(LEAK, "5.7", 4)) == "holds the page its owner maps"
    status = ref_status(client, preset_link(LEAK, "5.7", 5))
    assert status == "holds pfn 1; its owner C no longer maps data"


def test_a_page_reused_while_a_pipe_holds_it_is_drawn_at_risk_under_5_7(
    client: TestClient,
) -> None:
    doc = html(client.get(preset_link(LEAK, "5.7", 6)).text)
    frame = first(doc, "#stage svg g.frame[data-key='frame:1']")
    assert "at-risk" in attr(frame, "class").split()
    assert "⚠ REUSE · AT RISK" in [t.text() for t in frame.css("text")]
    pipe = first(doc, "#stage svg g.ref[data-key='ref:pipe']")
    assert "at-risk" in attr(pipe, "class").split()
    assert "at risk" in ref_status(client, preset_link(LEAK, "5.7", 6)).replace("-", " ")
    # A step earlier nothing was decided about the frame: no tab, no mark.
    before = html(client.get(preset_link(LEAK, "5.7", 5)).text)
    assert not before.css("#stage svg g.frame.at-risk")
    assert not before.css("#stage svg text.decision, #stage svg g[class*=decided]")


def test_copy_and_unshare_are_written_on_the_frame(client: TestClient) -> None:
    copied = html(client.get(preset_link(LEAK, "5.8", 4)).text)
    frame = first(copied, "#stage svg g.frame.decided-copy")
    assert attr(frame, "data-key") == "frame:2"
    assert "COPY of pfn 1" in [t.text() for t in frame.css("text")]
    unshared = html(client.get(preset_link("cow-ro-pin-previously-shared", "5.19", 5)).text)
    assert unshared.css("#stage svg g.frame.decided-unshare")


def test_a_preset_title_opens_at_step_0_in_the_era_of_its_story(client: TestClient) -> None:
    doc = html(client.get("/presets").text)
    rows = {first(r, "th[scope=row] > a").text(): r for r in doc.css("table.presets tbody tr")}
    leak = query(attr(first(rows[PRESETS[LEAK].title], "th[scope=row] > a"), "href"))
    assert (leak["policy"], leak["step"]) == ("5.7", "0")
    page = html(client.get(attr(first(rows[PRESETS[LEAK].title], "th > a"), "href")).text)
    assert first(page, "h1").text() == PRESETS[LEAK].title
    assert PRESETS[LEAK].story[:60] in first(page, ".scenario-story").text()
    assert first(page, "#stepbar .counter strong").text() == "0"


def test_every_page_of_the_simulator_has_one_h1(client: TestClient) -> None:
    for link in ("/", preset_link(LEAK, "5.7", 3), preset_link(LEAK, "5.7", 3, "/embed")):
        assert len(html(client.get(link).text).css("h1")) == 1, link


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_png_export_is_the_step_picture_at_twice_its_size(client: TestClient) -> None:
    link = preset_link(LEAK, "5.7", 6)
    page = html(client.get(link).text)
    svg = first(page, "#stage svg.diagram")
    png_link = attr(first(page, ".legend a[href^='/export.png']"), "href")
    r = client.get(png_link)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert 'filename="cowlab-5.7-step6.png"' in r.headers["content-disposition"]
    assert png_size(r.content) == (
        2 * int(attr(svg, "width")),
        2 * int(attr(svg, "height")),
    )


def test_png_export_of_a_bad_link_says_why(client: TestClient) -> None:
    r = client.get("/export.png?v=1&s=P+frok+C")
    assert r.status_code == 400
    assert "text/html" in r.headers["content-type"]


@pytest.mark.parametrize(
    ("text", "hint"),
    [("P mmap a;P wrte a", "write"), ("P mmap a;P vmsplice a as p;p relase", "release")],
)
def test_a_mistyped_verb_gets_a_did_you_mean(client: TestClient, text: str, hint: str) -> None:
    r = client.get("/", params={"v": "1", "s": text})
    assert r.status_code == 400
    assert f"did you mean `{hint}`?" in first(html(r.text), ".problem .what").text()


def test_an_error_in_typed_text_goes_beside_the_editor_and_keeps_the_address(
    client: TestClient,
) -> None:
    r = client.get(
        "/", params={"v": "1", "s": "P mmap a\nP frok C", "src": "editor"}, headers=hx("sim")
    )
    assert r.status_code == 400
    assert r.headers["HX-Retarget"] == "#editor-error"
    assert "HX-Push-Url" not in r.headers
    doc = html(r.text)
    assert first(doc, "h3").text() == "There is a syntax error in this scenario"
    assert "did you mean `fork`?" in first(doc, ".what").text()
    assert doc.css_first("svg") is None


def test_an_error_in_a_link_still_replaces_the_simulator(client: TestClient) -> None:
    r = client.get("/", params={"v": "1", "s": "P mmap a\nP frok C"}, headers=hx("sim"))
    assert r.headers["HX-Retarget"] == "#sim"
    assert "in this link" in r.text


def test_embed_steps_only_within_its_range(client: TestClient) -> None:
    base = preset_link(LEAK, "5.7", 7, "/embed") + "&from=3&to=5"
    doc = html(client.get(base).text)
    # A step outside the range is shown as the nearest end of the range.
    assert first(doc, ".stepbar .counter strong").text() == "5"
    assert doc.css_first("a[data-nav=next]") is None
    prev = query(attr(first(doc, "a[data-nav=prev]"), "href"))
    assert (prev["step"], prev["from"], prev["to"]) == ("4", "3", "5")
    home = html(client.get(attr(first(doc, "a[data-nav=home]"), "href")).text)
    assert first(home, ".stepbar .counter strong").text() == "3"
    assert home.css_first("a[data-nav=prev]") is None
    step = client.get(attr(first(doc, "a[data-nav=prev]"), "href"), headers=hx("embed"))
    assert step.headers["HX-Push-Url"].endswith("&step=4&from=3&to=5")


def test_embed_without_a_range_steps_through_everything(client: TestClient) -> None:
    doc = html(client.get(preset_link(LEAK, "5.7", 7, "/embed") + "&from=x").text)
    assert "from=" not in attr(first(doc, "a[data-nav=prev]"), "href")


def test_the_verbs_card_lists_every_verb_and_the_glossary_every_term(
    client: TestClient,
) -> None:
    carded = {v.verb for v in PROCESS_VERBS}
    assert carded == set(PROC_VERBS)
    assert {v.verb for v in REFERENCE_VERBS} == set(REF_VERBS)
    assert {v.verb for v in OTHER_LINES} == {"file", "#"}
    wanted = {
        "PTE", "mapcount", "refcount", "FOLL_GET", "FOLL_PIN", "FOLL_LONGTERM", "pin bias",
        "PageAnonExclusive", "unshare",
    }  # fmt: skip
    assert wanted <= {t.term for t in GLOSSARY}
    doc = html(client.get("/reference").text)
    assert {dt.text() for dt in doc.css(".glossary dt")} >= wanted
    # Reachable from the simulator page.
    page = html(client.get("/", headers={}).text)
    assert page.css_first("a[href='/reference']") is not None
