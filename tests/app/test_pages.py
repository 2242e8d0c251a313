"""The simulator page: whole page vs fragment, pushed links, actions, and what the page shows."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from selectolax.lexbor import LexborHTMLParser
from starlette.testclient import TestClient

from app.views.links import make_link
from engine.policies import POLICIES
from engine.presets import PRESETS
from engine.syntax import parse
from tests.app.conftest import HTMX, attr, first, html, hx, preset_link, preset_text


def query(link: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(link).query))


def test_plain_request_gets_the_whole_page(client: TestClient) -> None:
    r = client.get(preset_link("cve-2020-29374", "5.7", 3))
    assert r.status_code == 200
    doc = html(r.text)
    assert doc.css_first("html") is not None
    assert doc.css_first("#sim .layout") is not None
    assert doc.css_first("#stage svg.diagram") is not None
    assert first(doc, "#stepbar .counter strong").text() == "3"
    assert "HX-Push-Url" not in r.headers
    assert "HX-Request" in r.headers["Vary"]


def test_step_request_returns_the_stage_and_its_partials(client: TestClient) -> None:
    link = preset_link("cve-2020-29374", "5.7", 4)
    r = client.get(link, headers=hx("stage"))
    assert r.status_code == 200
    assert "<html" not in r.text and "<body" not in r.text
    doc = html(r.text)
    assert doc.css_first("svg.diagram") is not None
    # The editor and the verdict list do not change with the step: they are not re-sent.
    assert doc.css_first("textarea") is None
    partials = {n.attributes["hx-target"] for n in doc.css("hx-partial")}
    # The whole timeline of a short scenario is on the page already; app.js moves its mark.
    assert partials == {"#stepbar", "#narration"}
    assert first(doc, "hx-partial .stepbar").attributes["data-step"] == "4"
    assert r.headers["HX-Push-Url"] == link
    assert "HX-Request" in r.headers["Vary"]


def test_action_request_returns_the_whole_simulator_region(client: TestClient) -> None:
    r = client.get(preset_link("cve-2020-29374", "5.7"), headers=hx("sim"))
    doc = html(r.text)
    assert doc.css_first("textarea#scenario-text") is not None
    assert doc.css_first("#stage svg.diagram") is not None
    # The heading names the scenario, which an action or the editor may change.
    assert {n.attributes["hx-target"] for n in doc.css("hx-partial")} == {
        "#stepbar",
        "#narration",
        "#scenario_head",
    }


@pytest.mark.parametrize(
    "headers",
    [
        {"HX-Request": "true", "HX-Request-Type": "full", "HX-Target": "body"},
        {"HX-Request": "true", "HX-History-Restore-Request": "true"},
        {"HX-Request": "false"},
    ],
    ids=["htmx-asks-full", "history-restore", "not-htmx"],
)
def test_full_page_whenever_htmx_does_not_ask_for_a_fragment(
    client: TestClient, headers: dict[str, str]
) -> None:
    r = client.get(preset_link("cow-basic", "6.2", 2), headers=headers)
    assert r.status_code == 200
    assert html(r.text).css_first("head title") is not None
    assert "HX-Push-Url" not in r.headers


def test_pushed_link_is_canonical_even_for_a_hand_typed_one(client: TestClient) -> None:
    # Several spaces and newlines: the pushed link is the canonical `;` form.
    r = client.get("/", params={"s": "P  mmap a\n\nP fork C ", "policy": "5.9"}, headers=hx("sim"))
    assert r.headers["HX-Push-Url"] == "/?v=1&s=P+mmap+a;P+fork+C&policy=5.9&step=2"


def test_a_comment_stays_in_the_pushed_link_joined_by_newlines(client: TestClient) -> None:
    # DESIGN.md §8: comments travel in links, and a text with a `#` line is joined by newlines.
    r = client.get(
        "/", params={"s": "P  mmap a\n  # note\nP fork C", "policy": "5.9"}, headers=hx("sim")
    )
    assert r.headers["HX-Push-Url"] == "/?v=1&s=P+mmap+a%0A%23+note%0AP+fork+C&policy=5.9&step=2"


def test_a_lesson_link_without_policy_opens_in_the_lessons_policy(client: TestClient) -> None:
    r = client.get("/", params={"s": "#policy 5.7\nP mmap a"}, headers=hx("sim"))
    assert query(r.headers["HX-Push-Url"])["policy"] == "5.7"
    r = client.get("/", params={"s": "#policy 5.7\nP mmap a", "policy": "5.9"}, headers=hx("sim"))
    assert query(r.headers["HX-Push-Url"])["policy"] == "5.9"


def test_an_action_after_a_trailing_comment_adds_a_command(client: TestClient) -> None:
    r = client.get(
        "/",
        params={"s": "P mmap a  # the page", "add": "P write a v", "policy": "5.9"},
        headers=hx("sim"),
    )
    assert query(r.headers["HX-Push-Url"])["s"] == "P mmap a  # the page\nP write a v"


def test_missing_policy_means_latest_and_missing_step_means_the_end(client: TestClient) -> None:
    r = client.get("/", params={"s": "P mmap a;P write a"}, headers=hx("sim"))
    pushed = query(r.headers["HX-Push-Url"])
    assert pushed["policy"] == "6.15"
    assert pushed["step"] == "2"


def test_step_past_the_end_shows_the_end(client: TestClient) -> None:
    r = client.get("/", params={"v": "1", "s": "P mmap a", "step": "50"}, headers=hx("stage"))
    assert r.status_code == 200
    assert query(r.headers["HX-Push-Url"])["step"] == "1"


def action_form(doc: LexborHTMLParser) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The actions form's hidden fields, and its buttons as (label, command)."""
    form = first(doc, ".actions form")
    hidden = {attr(i, "name"): attr(i, "value") for i in form.css("input[type=hidden]")}
    buttons = [(b.text(), attr(b, "value")) for b in form.css("button[name=add]")]
    return hidden, buttons


def test_action_buttons_send_one_command_to_append_to_the_scenario_so_far(
    client: TestClient,
) -> None:
    link = preset_link("cow-basic", "5.7", 3)
    doc = html(client.get(link).text)
    form = first(doc, ".actions form")
    assert form.attributes["action"] == "/" and form.attributes["hx-get"] == "/"
    hidden, buttons = action_form(doc)
    # The preset's first three commands, with its title, policy and their comments.
    assert hidden["s"] == "\n".join(query(link)["s"].split("\n")[:5])
    assert hidden["s"].startswith("#title Basic COW after fork() ... with base page\n#policy 6.2\n")
    assert parse(hidden["s"]).commands == parse(query(link)["s"]).commands[:3]
    assert hidden["policy"] == "5.7"
    assert len(buttons) > 20
    for label, command in buttons:
        assert command.endswith(label)
    r = client.get("/", params={**hidden, "add": "C write mem"}, headers=hx("sim"))
    pushed = r.headers["HX-Push-Url"]
    assert query(pushed)["s"].split("\n") == [*hidden["s"].split("\n"), "C write mem"]
    assert query(pushed)["step"] == "4"


def test_action_buttons_of_a_plain_scenario_send_its_commands_joined_by_semicolons(
    client: TestClient,
) -> None:
    doc = html(client.get("/?v=1&s=P+mmap+a;P+write+a+v;P+fork+C&policy=5.7&step=2").text)
    hidden, _ = action_form(doc)
    assert hidden["s"] == "P mmap a;P write a v"


def test_an_action_in_a_challenge_keeps_its_goal(client: TestClient) -> None:
    text = "#goal leak@5.7\nP mmap a\n#? q\nP read a\n#: later\nP write a v"
    doc = html(client.get("/", params={"v": "1", "s": text, "step": "2"}).text)
    hidden, _ = action_form(doc)
    assert hidden["s"] == "#goal leak@5.7\nP mmap a\n#? q\nP read a"


def test_without_javascript_an_action_redirects_to_the_share_link(client: TestClient) -> None:
    r = client.get(
        "/",
        params={"v": "1", "s": "P mmap a", "policy": "5.9", "add": "P write a"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/?v=1&s=P+mmap+a;P+write+a&policy=5.9&step=2"


def test_an_action_on_the_empty_machine_starts_the_scenario(client: TestClient) -> None:
    r = client.get("/", params={"v": "1", "add": "P mmap a"}, headers=hx("sim"))
    assert query(r.headers["HX-Push-Url"])["s"] == "P mmap a"


def test_following_every_action_gives_a_page(client: TestClient) -> None:
    doc = html(client.get(preset_link("cow-iouring-fork", "5.19", 5)).text)
    hidden, buttons = action_form(doc)
    assert "fixed write dma-fixed" in [command for _, command in buttons], "R/W refs can be written"
    for _, command in buttons:
        r = client.get("/", params={**hidden, "add": command}, headers=hx("sim"))
        assert r.status_code == 200, command
        assert query(r.headers["HX-Push-Url"])["s"].endswith(command.replace(" ", " "))


def test_action_at_an_earlier_step_says_it_replaces_the_later_steps(client: TestClient) -> None:
    doc = html(client.get(preset_link("cow-basic", "5.7", 2)).text)
    assert "replaces the 4 steps after it" in first(doc, ".actions .note").text()


def test_fork_suggests_a_name_no_step_uses(client: TestClient) -> None:
    _, buttons = action_form(html(client.get(preset_link("cow-basic", "5.7", 3)).text))
    forks = [command for _, command in buttons if " fork " in command]
    assert forks and "P fork C" not in forks


def test_page_shows_the_narration_timeline_policy_story_and_verdicts(client: TestClient) -> None:
    r = client.get(preset_link("cve-2020-29374", "5.7"))
    doc = html(r.text)
    narration = first(doc, "#narration")
    assert narration.attributes["aria-live"] == "polite"
    assert "pipe read" in narration.text()
    timeline = doc.css("#timeline li[aria-current]")
    assert len(timeline) == 1 and "pipe read" in timeline[0].text()
    assert len(doc.css("#timeline form > ol > li")) == 8  # step 0 and seven commands
    form = first(doc, "#timeline form")
    assert form.attributes["hx-target"] == "#stage"
    assert [b.attributes["value"] for b in form.css("button[name=step]")] == [
        str(k) for k in range(8)
    ]
    assert first(doc, ".policy a.current").text() == "5.7"
    assert str(POLICIES["5.7"].story) in first(doc, ".policy .story").text()
    assert len(doc.css(".all-stories dd")) == len(POLICIES)
    verdicts = doc.css(".verdicts li")
    assert len(verdicts) == 1 and "leak" in verdicts[0].text()


def test_policy_links_keep_the_step(client: TestClient) -> None:
    doc = html(client.get(preset_link("cow-basic", "5.7", 3)).text)
    for a in doc.css(".policies a"):
        q = query(a.attributes["href"] or "")
        assert q["step"] == "3"
        assert q["policy"] in POLICIES


def test_text_table_repeats_the_diagram(client: TestClient) -> None:
    doc = html(client.get(preset_link("cow-iouring-fork", "5.7", 5)).text)
    tables = {first(t, "caption").text(): t for t in doc.css(".state-text table")}
    assert set(tables) == {"Page tables", "Physical frames", "References"}
    ref_rows = tables["References"].css("tbody tr")
    assert len(ref_rows) == 1
    assert "stale" in ref_rows[0].text()
    pte_rows = [r.text() for r in tables["Page tables"].css("tbody tr")]
    assert any("Δ yes" in row and "P" in row for row in pte_rows), pte_rows


def test_present_view_is_kept_by_every_link(client: TestClient) -> None:
    link = preset_link("cow-basic", "5.7", 2) + "&view=present"
    doc = html(client.get(link).text)
    assert "present" in (first(doc, "body").attributes["class"] or "")
    for a in doc.css("#stepbar a, .policies a"):
        assert query(a.attributes["href"] or "").get("view") == "present"
    assert first(doc, "#timeline input[name=view]").attributes["value"] == "present"
    assert action_form(doc)[0]["view"] == "present"
    toggle = first(doc, "a[data-nav=present]")
    assert "view" not in query(toggle.attributes["href"] or "")


def test_empty_link_is_the_empty_machine_with_a_start(client: TestClient) -> None:
    doc = html(client.get("/").text)
    assert first(doc, "#stepbar .counter strong").text() == "0"
    assert action_form(doc)[1] == [("P mmap a", "P mmap a")]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_renders_at_every_step_boundary(client: TestClient, name: str) -> None:
    for step in (0, 1, None):
        r = client.get(preset_link(name, "6.2", step))
        assert r.status_code == 200, (name, step)


def test_editor_form_submits_to_the_page_and_keeps_the_policy(client: TestClient) -> None:
    doc = html(client.get(preset_link("cow-basic", "5.9")).text)
    form = first(doc, ".editor form")
    assert form.attributes["action"] == "/"
    assert first(form, "input[name=policy]").attributes["value"] == "5.9"
    # One canonical command per line: the preset's comments and spacing are not in links.
    assert first(form, "textarea[name=s]").text() == preset_text("cow-basic").replace(";", "\n")


def test_share_link_field_holds_the_absolute_link(client: TestClient) -> None:
    link = preset_link("cow-basic", "5.7", 2)
    doc = html(client.get(link).text)
    assert first(doc, "input.share-link").attributes["value"] == "http://testserver" + link


def test_embed_link_and_export_link_carry_the_same_step(client: TestClient) -> None:
    doc = html(client.get(preset_link("cow-basic", "5.7", 2)).text)
    for path in ("/export.svg", "/embed"):
        a = first(doc, f"figcaption a[href^='{path}']")
        q = query(a.attributes["href"] or "")
        assert q["step"] == "2" and q["policy"] == "5.7"


def test_htmx_partial_of_a_link_with_no_target_header_is_the_sim_region(
    client: TestClient,
) -> None:
    r = client.get(make_link("/", "P mmap a"), headers=HTMX)
    assert html(r.text).css_first("textarea") is not None


def test_probe_button_appears_only_when_the_server_allows_probing() -> None:
    from app.http.main import create_app
    from app.probe.gate import ProbeSettings

    link = preset_link("cow-basic", "5.7")
    with TestClient(create_app(ProbeSettings())) as c:
        assert html(c.get(link).text).css_first(".probe-box") is None
    with TestClient(create_app(ProbeSettings(True, frozenset({"testserver"}), b"k"))) as c:
        box = html(c.get(link).text).css_first(".probe-box form")
        assert box is not None and box.attributes["hx-post"] == "/probe"
        assert first(box, "input[name=s]").attributes["value"] == preset_text("cow-basic").replace(
            ";", "\n"
        )


def test_a_timeline_step_request_shows_that_step(client: TestClient) -> None:
    doc = html(client.get(preset_link("cve-2020-29374", "5.7")).text)
    fields = {attr(i, "name"): attr(i, "value") for i in doc.css("#timeline input[type=hidden]")}
    r = client.get("/", params={**fields, "step": "2"}, headers=hx("stage"))
    assert r.headers["HX-Push-Url"] == preset_link("cve-2020-29374", "5.7", 2)


def test_a_very_large_scenario_draws_what_the_step_touched_and_stays_small(
    client: TestClient,
) -> None:
    from app.bench.engine import scale_scenario
    from engine.syntax import format_scenario

    text = format_scenario(scale_scenario(1000, 64, 256), ";")
    r = client.get(make_link("/", text, policy="6.2", step=500), headers=hx("stage"))
    assert r.status_code == 200
    assert len(r.content) < 300_000
    doc = html(r.text)
    note = first(doc, ".focus-note").text()
    assert "of 64 processes" in note
    assert len(doc.css("svg.diagram g.pte")) <= 40
    steps = doc.css("hx-partial[hx-target='#timeline'] form > ol > li")
    assert 40 < len(steps) < 80
    assert "later steps" in steps[-1].text() and "earlier steps" in steps[0].text()


def test_the_table_says_every_vma_flag_the_picture_shows(client: TestClient) -> None:
    text = "P mmap a;P write a x;P clear-softdirty;P mprotect a ro;P uffd-wp a on"
    doc = html(client.get(make_link("/", text, policy="6.2")).text)
    picture = first(doc, "svg.diagram g.pte").text()
    row = next(r for r in doc.css(".state-text table tbody tr") if "P" in r.text())
    vma_cell = row.css("td")[4].text()
    for flag in ("read-only VMA", "sd tracking", "uffd-wp armed"):
        assert flag in picture and flag in vma_cell, flag
