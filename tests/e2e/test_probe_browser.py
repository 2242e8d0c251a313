"""The probe in real chromium, on a loopback server as `cowlab serve` starts it: the button of a
cowlab page runs the scenario on this kernel, and a form of another site that posts to the
probe is refused with a page that says why."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from playwright.sync_api import Page, Route, expect

from app.http.main import create_app
from app.probe import gate
from tests.app.conftest import preset_link
from tests.e2e.conftest import _free_port

pytestmark = [pytest.mark.e2e, pytest.mark.kernel]

EVIL = "http://evil.example/"


@pytest.fixture(scope="module")
def probing_server() -> Iterator[str]:
    port = _free_port()
    app = create_app(probe=gate.settings_for("127.0.0.1", port))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=5)


def test_the_button_runs_the_scenario_on_this_kernel(page: Page, probing_server: str) -> None:
    page.goto(probing_server + preset_link("cow-basic", "latest"))
    with page.expect_response(probing_server + "/probe") as answer:
        page.get_by_role("button", name="Run on this server's kernel").click()
    assert answer.value.status == 200
    result = page.locator("#probe-result section.probe")
    expect(result).to_contain_text("On this server's kernel")
    expect(result).not_to_contain_text("Skipped")
    expect(result.locator("table.probe-table tbody tr").first).to_be_visible()


def test_a_form_on_another_site_cannot_run_the_probe(page: Page, probing_server: str) -> None:
    attack = (
        f'<form method="post" action="{probing_server}/probe">'
        '<input type="hidden" name="s" value="P mmap a&#10;P fork C">'
        f'<input type="hidden" name="{gate.TOKEN_FIELD}" value="guess">'
        '<button type="submit">Win a prize</button></form>'
    )

    def evil_site(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=attack)

    page.route(EVIL, evil_site)
    page.goto(EVIL)
    with page.expect_response(probing_server + "/probe") as answer:
        page.get_by_role("button", name="Win a prize").click()
    assert answer.value.status == 403
    expect(page.locator("body")).to_contain_text("not of this server")
