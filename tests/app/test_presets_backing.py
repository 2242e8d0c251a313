"""The presets grid grouped by backing (base page, THP, PTE-mapped THP, hugetlb, file & other),
and its filter: plain links that work without JavaScript, the choice in the URL, htmx swapping
only the grid."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.testclient import TestClient

from app.views.presets import BACKING_IDS, preset_backing
from app.views.runs import run
from engine.presets import PRESETS, Preset
from tests.app.conftest import attr, first, html

GRID = {"HX-Request": "true", "HX-Request-Type": "partial", "HX-Target": "div#presets-grid"}


def _preset(text: str) -> Preset:
    return Preset("x", "x", "", "", text)


@pytest.mark.parametrize(
    ("text", "backing"),
    [
        ("P mmap a backing=hugetlb\nP write a v1", "hugetlb"),
        # pte-map remaps a THP: the backing under test is the PTE-mapped one.
        ("P mmap a backing=thp; P write a v1; P pte-map a", "pte-thp"),
        ("P mmap a backing=thp; P write a v1; P fork C", "thp"),
        # Words in a comment are not the scenario's.
        ("P mmap a  # backing=thp, pte-map\nP write a v1", "base"),
    ],
)
def test_backing_is_named_by_the_scenario_words(text: str, backing: str) -> None:
    trace = run("P mmap a; P write a v1", "latest").trace
    assert preset_backing(_preset(text), trace) == backing


@pytest.mark.parametrize(
    ("name", "backing"),
    [
        ("cve-2020-29374", "base"),
        ("cow-vmsplice-unmap-child-swap", "base"),
        ("cow-zeropage-ro-pin", "other"),  # the shared zero page
        ("cow-memfd-basic", "other"),  # the page cache
        ("dirty-cow", "other"),
    ],
)
def test_zero_page_and_page_cache_presets_are_file_and_other(name: str, backing: str) -> None:
    preset = PRESETS[name]
    assert preset_backing(preset, run(preset.text, "latest").trace) == backing


def _shown(client: TestClient, link: str) -> tuple[list[str], list[str]]:
    """(group ids in order, preset names) of the grid at ``link``."""
    doc = html(client.get(link).text)
    groups = [attr(s, "aria-labelledby").removeprefix("bk-") for s in doc.css(".backing-group")]
    return groups, [attr(tr, "data-preset") for tr in doc.css("table.presets tbody tr")]


def test_every_preset_is_shown_once_under_a_heading_of_its_backing(client: TestClient) -> None:
    doc = html(client.get("/presets").text)
    seen: list[str] = []
    for section in doc.css(".backing-group"):
        group = attr(section, "aria-labelledby").removeprefix("bk-")
        assert group in BACKING_IDS
        heading = first(section, "h2")
        rows = section.css("table.presets tbody tr")
        assert f"{len(rows)} preset" in heading.text()
        assert {attr(tr, "data-backing") for tr in rows} == {group}
        seen += [attr(tr, "data-preset") for tr in rows]
    assert sorted(seen) == sorted(PRESETS)
    groups = [attr(s, "aria-labelledby").removeprefix("bk-") for s in doc.css(".backing-group")]
    assert groups == [b for b in BACKING_IDS if b in groups]  # the selftest's order


def test_a_backing_in_the_link_shows_that_group_alone(client: TestClient) -> None:
    groups, names = _shown(client, "/presets?backing=other")
    assert groups == ["other"]
    assert "cow-zeropage-basic" in names and "cow-memfd-basic" in names
    assert "cve-2020-29374" not in names
    doc = html(client.get("/presets?backing=other").text)
    current = doc.css(".backing-filter a[aria-current]")
    assert [attr(a, "data-backing") for a in current] == ["other"]


def test_the_filter_is_plain_links_that_name_their_choice(client: TestClient) -> None:
    doc = html(client.get("/presets").text)
    links = doc.css(".backing-filter a")
    assert [attr(a, "data-backing") for a in links][0] == "all"
    assert attr(links[0], "aria-current") == "true"
    for a in links[1:]:
        href = attr(a, "href")
        query = dict(parse_qsl(urlsplit(href).query))
        assert query["backing"] == attr(a, "data-backing")
        # Without JavaScript the link is the whole page, filtered.
        assert _shown(client, href)[0] == [query["backing"]]
        count = int(first(a, ".count").text())
        assert count == len(_shown(client, href)[1])


def test_the_filter_keeps_the_custom_columns(client: TestClient) -> None:
    custom = "custom:base=5.9,gup_read=break-cow"
    doc = html(client.get("/presets", params={"custom": custom, "backing": "base"}).text)
    for a in doc.css(".backing-filter a"):
        assert ("custom", custom) in parse_qsl(urlsplit(attr(a, "href")).query)
    assert custom in first(doc, "table.presets thead").text()


def test_an_unknown_backing_shows_every_preset_and_says_so(client: TestClient) -> None:
    r = client.get("/presets?backing=floppy")
    assert r.status_code == 200
    assert "floppy" in first(html(r.text), ".grid-note").text()
    assert sorted(_shown(client, "/presets?backing=floppy")[1]) == sorted(PRESETS)


def test_htmx_swaps_the_grid_alone_and_pushes_the_filtered_link(client: TestClient) -> None:
    r = client.get("/presets?backing=other", headers=GRID)
    assert r.status_code == 200
    assert r.headers["HX-Push-Url"] == "/presets?backing=other"
    assert "Vary" in r.headers and "HX-Request" in r.headers["Vary"]
    doc = html(r.text)
    assert doc.css_first("h1") is None and doc.css_first("header") is None
    assert doc.css_first(".backing-filter") is not None  # the filter shows the new choice
    assert [attr(s, "aria-labelledby") for s in doc.css(".backing-group")] == ["bk-other"]
