"""Huge pages through the web layer: the page, its legend and text table, the SVG and PNG
exports, for the selftest's "Basic COW after fork() ... with THP" replayed by the engine."""

from __future__ import annotations

import struct

from starlette.testclient import TestClient

from app.views.links import make_link
from tests.app.conftest import attr, first, html
from tests.app.folio_states import THP


def test_the_legend_tells_pmd_from_pte_lines_only_where_a_folio_is_drawn(
    client: TestClient,
) -> None:
    huge = html(client.get(make_link("/", THP, policy="6.2", step=3)).text)
    assert "PMD: one entry maps a whole 2 MiB folio" in first(huge, ".legend").text()
    base = html(client.get(make_link("/", "P mmap a; P write a v1", policy="6.2", step=2)).text)
    assert "PMD" not in first(base, ".legend").text()


def test_a_thp_write_fault_in_6_2_copies_subpage_0_and_the_picture_says_so(
    client: TestClient,
) -> None:
    # 5.8 on: do_huge_pmd_wp_page splits a shared PMD and the PTE fault copies one subpage.
    svg = client.get(make_link("/export.svg", THP, policy="6.2", step=5)).text
    doc = html(svg)
    small = first(doc, "g.split-off")
    assert "4 KiB from THP" in small.text()
    assert "COPY of pfn 1 #0" in small.text()
    assert first(doc, "g.folio.thp") is not None
    assert doc.css("g.map-arrow.pmd") and doc.css("g.map-arrow.pte")


def test_a_thp_step_exports_as_png(client: TestClient) -> None:
    r = client.get(make_link("/export.png", THP, policy="6.2", step=5))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", r.content[16:24])
    assert width > 1000 and height > 800  # twice the picture of a folio and a small page


def test_the_text_table_says_how_each_process_maps_the_folio(client: TestClient) -> None:
    doc = html(client.get(make_link("/", THP, policy="6.2", step=5)).text)
    table = first(doc, ".state-text").text()
    assert "subpage #0 by a PTE to pfn 2; subpages #1–511 by 511 PTEs to the folio pfn 1" in table
    assert "pfn 1, the whole 2 MiB folio, by one PMD" in table
    assert "4 KiB copied out of subpage #0 of THP pfn 1" in table


def _buttons(client: TestClient, link: str) -> set[str]:
    doc = html(client.get(link).text)
    return {attr(b, "value") for b in doc.css(".actions button[name=add]")}


def test_the_buttons_offer_huge_pages_and_pte_map_where_it_applies(client: TestClient) -> None:
    pmd = _buttons(client, make_link("/", THP, policy="6.2", step=3))
    assert {"P pte-map mem", "C pte-map mem"} <= pmd
    assert {"P mmap a backing=thp", "P mmap a backing=hugetlb"} <= pmd
    # Once PTE-mapped (or split by a write fault) there is no PMD left to remap.
    assert "P pte-map mem" not in _buttons(client, make_link("/", THP, policy="6.2", step=5))
    hugetlb = "P mmap mem backing=hugetlb; P write mem v1"
    buttons = _buttons(client, make_link("/", hugetlb, policy="6.2", step=2))
    assert "P swapout mem" not in buttons and "P pte-map mem" not in buttons
    assert "P swapout a" in _buttons(client, make_link("/", "P mmap a; P write a v", step=2))
