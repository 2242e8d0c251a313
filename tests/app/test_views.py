"""/compare, /presets, /embed, /export.svg and /docs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.testclient import TestClient

from app.views.compare import step_signature
from app.views.links import make_link
from app.views.runs import run
from engine.policies import POLICIES
from engine.presets import PRESETS
from tests.app.conftest import attr, first, html, hx, preset_link, preset_text


def query(link: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(link).query))


# ---- /compare


def test_compare_shows_every_read_under_every_era_and_flags_differences(
    client: TestClient,
) -> None:
    doc = html(client.get(preset_link("cve-2020-29374", path="/compare")).text)
    heads = [th.text() for th in doc.css("table.reads thead th")][1:-1]
    assert heads == list(POLICIES)
    rows = doc.css("table.reads tbody tr")
    assert len(rows) == 1  # the one `pipe read`
    assert "differs" in (rows[0].attributes["class"] or "")
    cells = [td.text() for td in rows[0].css("td")][:-1]
    assert cells[:2] == ["THIS-IS-SECRET ≠", "THIS-IS-SECRET ≠"]
    assert set(cells[2:]) == {"BORING-DATA"}
    footer = [td.text() for td in doc.css("table.reads tfoot td")][:-1]
    assert ["leak" in c for c in footer] == [True, True] + [False] * (len(POLICIES) - 2)


def test_compare_names_the_first_step_where_eras_diverge(client: TestClient) -> None:
    doc = html(client.get(preset_link("cve-2020-29374", path="/compare")).text)
    lead = first(doc, ".divergence .lead")
    assert "step 4" in lead.text() and "C vmsplice data as pipe" in lead.text()
    groups = [li.text() for li in doc.css(".groups-diff li")]
    assert len(groups) >= 2
    assert any(g.startswith("4.8, 5.7") for g in groups)


def test_divergence_ignores_pfn_numbering_and_the_exclusive_bit() -> None:
    text = "P mmap a;P write a;P fork C;C write a"
    a, b = run(text, "5.9"), run(text, "5.19")
    for sa, sb in zip(a.trace.steps, b.trace.steps, strict=True):
        assert step_signature(sa) == step_signature(sb)


def test_compare_with_chosen_policies_and_small_diagrams_at_the_step(
    client: TestClient,
) -> None:
    link = make_link("/compare", preset_text("cow-basic"), policies=("5.7", "6.2"), step=3)
    doc = html(client.get(link).text)
    assert [th.text() for th in doc.css("table.reads thead th")][1:-1] == ["5.7", "6.2"]
    panels = doc.css(".panel")
    assert len(panels) == 2
    for panel, pid in zip(panels, ("5.7", "6.2"), strict=True):
        assert panel.css_first("svg.diagram") is not None
        q = query(first(panel, "figcaption a").attributes["href"] or "")
        assert q["policy"] == pid and q["step"] == "3"
    assert "Every chosen era does exactly the same" in first(doc, ".divergence").text()


def test_compare_checkbox_form_and_step_fragment_push_canonical_links(
    client: TestClient,
) -> None:
    text = preset_text("cow-basic")
    r = client.get(
        "/compare", params=[("s", text), ("p", "6.2"), ("p", "5.7")], headers=hx("compare")
    )
    assert query(r.headers["HX-Push-Url"])["policies"] == "6.2,5.7"
    link = make_link("/compare", text, step=2)
    r = client.get(link, headers=hx("cmp-stage"))
    assert r.headers["HX-Push-Url"] == link
    doc = html(r.text)
    assert len(doc.css(".panel")) == len(POLICIES)
    assert doc.css_first("table.reads") is None  # the table does not change with the step


def test_compare_with_an_unknown_policy_is_a_4xx_page(client: TestClient) -> None:
    r = client.get(make_link("/compare", "P mmap a", policies=("5.7", "7.0")))
    assert r.status_code == 400
    assert "7.0" in r.text


# ---- /presets


def test_presets_grid_has_every_preset_under_every_policy(client: TestClient) -> None:
    doc = html(client.get("/presets").text)
    for table in doc.css("table.presets"):
        assert [th.text().split()[0] for th in table.css("thead th")][1:] == list(POLICIES)
    rows = doc.css("table.presets tbody tr")
    assert sorted(attr(row, "data-preset") for row in rows) == sorted(PRESETS)
    for row in rows:
        assert len(row.css("td.cell a")) == len(POLICIES)


def test_presets_cells_hold_the_live_verdicts_and_open_their_run(client: TestClient) -> None:
    doc = html(client.get("/presets").text)
    row = first(doc, 'table.presets tbody tr[data-preset="cve-2020-29374"]')
    cells = row.css("td.cell")
    expected = [bool(run(PRESETS["cve-2020-29374"].text, pid).trace.verdicts) for pid in POLICIES]
    assert ["leak" in c.text() for c in cells] == expected
    for cell, pid in zip(cells, POLICIES, strict=True):
        href = first(cell, "a").attributes["href"] or ""
        assert query(href)["policy"] == pid
    assert client.get(first(cells[0], "a").attributes["href"] or "").status_code == 200


# ---- /embed


def test_embed_is_minimal_and_steps_within_embed(client: TestClient) -> None:
    link = preset_link("cow-basic", "5.7", 3, "/embed")
    doc = html(client.get(link).text)
    assert doc.css_first("header") is None and doc.css_first("textarea") is None
    assert doc.css_first("svg.diagram") is not None
    for a in doc.css(".stepbar a"):
        assert (a.attributes["href"] or "").startswith("/embed?")
    assert query(first(doc, ".embed-open a").attributes["href"] or "")["step"] == "3"
    r = client.get(link, headers=hx("embed"))
    assert "<html" not in r.text and r.headers["HX-Push-Url"] == link


# ---- /export.svg


def test_export_is_a_well_formed_svg_download(client: TestClient) -> None:
    r = client.get(preset_link("cve-2020-29374", "5.7", 7, "/export.svg"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/svg+xml"
    assert r.headers["content-disposition"] == 'attachment; filename="cowlab-5.7-step7.svg"'
    root = ET.fromstring(r.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    svg = "{http://www.w3.org/2000/svg}"
    classes = [g.attrib.get("class", "") for g in root.iter(f"{svg}g")]
    assert any("leaking" in c.split() for c in classes)


@pytest.mark.parametrize("step", [0, 3])
def test_export_title_names_step_and_policy(client: TestClient, step: int) -> None:
    r = client.get(preset_link("cow-basic", "5.9", step, "/export.svg"))
    title = ET.fromstring(r.content).find("{http://www.w3.org/2000/svg}title")
    assert title is not None and f"step {step} under 5.9" in (title.text or "")


# ---- /docs and the schema


def test_docs_page_lists_every_operation_without_a_cdn(client: TestClient) -> None:
    doc = html(client.get("/docs").text)
    ops = [h.text() for h in doc.css(".op h2")]
    assert any("POST" in o and "/api/v1/simulate" in o for o in ops)
    assert any("GET" in o and "/compare" in o for o in ops)


def test_html_routes_declare_html_in_the_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/", "/compare", "/presets", "/embed", "/docs"):
        content = schema["paths"][path]["get"]["responses"]["200"]["content"]
        assert "text/html" in content, path
    assert "image/svg+xml" in schema["paths"]["/export.svg"]["get"]["responses"]["200"]["content"]
