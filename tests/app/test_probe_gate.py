"""Who may run a probe: the attacks of issue 9 against the whole application, each refused with
a 403 that says what was wrong, and the legitimate use of the button that still works.

The kernel is replaced by a runner that records that it was asked: a refused request must never
reach it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from selectolax.lexbor import LexborHTMLParser

from app.http.main import create_app
from app.probe import compare, gate, web
from app.probe.capabilities import kernel_release
from app.probe.executor import KernelRun
from app.probe.gate import ProbeSettings
from engine import commands as c
from tests.app.conftest import first, preset_link

SCENARIO = "P mmap a\nP write a v1\nP fork C\nC read a"
# `cowlab serve` on its default address.
LOOPBACK = gate.settings_for("127.0.0.1", 8000)
HERE = "http://127.0.0.1:8000"
SAME_ORIGIN = {"Origin": HERE, "Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every scenario that reached the kernel."""
    seen: list[str] = []

    def runner(scenario: c.Scenario, timeout: float) -> KernelRun:
        seen.append("run")
        return KernelRun(kernel_release(), ())

    monkeypatch.setattr(compare, "run_isolated", runner)
    monkeypatch.setattr(web, "_cache", type(web._cache)())
    return seen


@pytest.fixture
def server(runs: list[str]) -> Iterator[TestClient]:
    with TestClient(create_app(probe=LOOPBACK), base_url=HERE) as client:
        yield client


def token_on_page(client: TestClient, headers: dict[str, str] | None = None) -> str:
    page = LexborHTMLParser(client.get(preset_link("cow-basic"), headers=headers).text)
    field = first(page, f".probe-box input[name={gate.TOKEN_FIELD}]")
    assert field is not None, "the page shows no probe form"
    return str(field.attributes["value"])


def post_form(
    client: TestClient, headers: dict[str, str], token: str | None = None
) -> tuple[int, str]:
    data = {"s": SCENARIO, gate.TOKEN_FIELD: token if token is not None else token_on_page(client)}
    response = client.post("/probe", data=data, headers=headers)
    return response.status_code, LexborHTMLParser(response.text).text(deep=True)


# ------------------------------------------------------------------------ the server switch
@pytest.mark.parametrize(
    ("host", "flag", "allowed"),
    [
        ("127.0.0.1", False, True),
        ("127.0.0.2", False, True),
        ("::1", False, True),
        ("localhost", False, True),
        ("0.0.0.0", False, False),
        ("192.0.2.7", False, False),
        ("::", False, False),
        ("0.0.0.0", True, True),
    ],
)
def test_probing_is_on_only_on_loopback_or_with_allow_probe(
    host: str, flag: bool, allowed: bool
) -> None:
    assert gate.probe_allowed(host, flag) is allowed
    assert gate.settings_for(host, 8000, allow_probe=flag).enabled is allowed
    assert not gate.settings_for(host, 8000, allow_probe=flag, no_probe=True).enabled


def test_a_loopback_server_probes_only_for_its_loopback_names() -> None:
    assert LOOPBACK.hosts == {"127.0.0.1:8000", "localhost:8000", "[::1]:8000"}
    wide = gate.settings_for("0.0.0.0", 80, allow_probe=True, extra_hosts=("Lab.Example",))
    assert "lab.example:80" in wide.hosts and "127.0.0.1" in wide.hosts


def test_the_switch_reaches_every_worker_through_the_environment() -> None:
    assert ProbeSettings.from_environ(LOOPBACK.to_environ()) == LOOPBACK
    # Started by hand without `cowlab serve`'s secret and names: no probing at all.
    assert not ProbeSettings.from_environ({gate.ENV_FLAG: "1"}).enabled
    assert not ProbeSettings.from_environ({}).enabled


def test_the_switch_lives_in_app_state_not_in_the_process() -> None:
    on, off = create_app(probe=LOOPBACK), create_app(probe=ProbeSettings())
    with TestClient(on, base_url=HERE) as a, TestClient(off, base_url=HERE) as b:
        assert a.get("/api/v1/probe").json()["enabled"] is True
        assert b.get("/api/v1/probe").json()["enabled"] is False


# ------------------------------------------------------------------------------ the attacks
def test_a_cross_site_form_post_is_refused(server: TestClient, runs: list[str]) -> None:
    status, text = post_form(
        server, {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403 and "https://evil.example" in text
    assert runs == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a data: page
        {"Origin": "http://127.0.0.1:9000"},  # another program on this machine
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # localhost:9000 is same-site with localhost:8000
        {"Origin": HERE, "Sec-Fetch-Site": "same-site"},
    ],
)
def test_any_other_origin_is_refused_on_both_routes(
    server: TestClient, runs: list[str], headers: dict[str, str]
) -> None:
    status, text = post_form(server, headers)
    assert status == 403 and "only cowlab's own pages" in text
    api = server.post("/api/v1/probe", json={"scenario": SCENARIO}, headers=headers)
    assert api.status_code == 403
    assert api.json()["detail"]["error"] == "probe-cross-origin"
    assert runs == []


@pytest.mark.parametrize("token", ["", "0" * 64, gate.form_token(ProbeSettings(True), "x")])
def test_a_form_post_without_this_servers_token_is_refused(
    server: TestClient, runs: list[str], token: str
) -> None:
    status, text = post_form(server, SAME_ORIGIN, token=token)
    assert status == 403 and "token" in text
    assert runs == []


def test_dns_rebinding_is_refused_by_the_host_allow_list(
    server: TestClient, runs: list[str]
) -> None:
    # evil.example now resolves to 127.0.0.1: to the browser its page and cowlab's are one origin.
    rebound = {
        "Host": "evil.example:8000",
        "Origin": "http://evil.example:8000",
        "Sec-Fetch-Site": "same-origin",
    }
    page = server.get(preset_link("cow-basic"), headers={"Host": "evil.example:8000"}).text
    assert LexborHTMLParser(page).css_first(".probe-box form") is None
    assert "not as evil.example:8000" in LexborHTMLParser(page).text(deep=True)
    token = gate.form_token(LOOPBACK, "evil.example:8000")  # as if the page had carried one
    status, text = post_form(server, rebound, token=token)
    assert status == 403 and "127.0.0.1:8000" in text
    api = server.post("/api/v1/probe", json={"scenario": SCENARIO}, headers=rebound)
    assert (api.status_code, api.json()["detail"]["error"]) == (403, "probe-host")
    assert runs == []


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Forwarded-For", "203.0.113.9"),
        ("Forwarded", "for=203.0.113.9;proto=https"),
        ("X-Real-IP", "203.0.113.9"),
        ("Via", "1.1 nginx"),
        ("X-Forwarded-Host", "lab.example"),
    ],
)
def test_a_request_through_a_proxy_never_probes_and_the_page_says_why(
    server: TestClient, runs: list[str], header: str, value: str
) -> None:
    proxied = {header: value}
    page = LexborHTMLParser(server.get(preset_link("cow-basic", "5.8"), headers=proxied).text)
    assert page.css_first(".probe-box form") is None
    assert f"came through a proxy ({header.lower()})" in first(page, ".probe-box").text()
    status, text = post_form(server, {**SAME_ORIGIN, **proxied}, token=token_on_page(server))
    assert status == 403 and "proxy" in text
    api = server.post("/api/v1/probe", json={"scenario": SCENARIO}, headers=proxied)
    assert (api.status_code, api.json()["detail"]["error"]) == (403, "probe-proxied")
    info = server.get("/api/v1/probe", headers=proxied).json()
    assert info["enabled"] is False and "proxy" in info["reason"]
    assert runs == []


def test_a_page_seen_directly_is_not_served_from_the_memo_to_a_proxied_visitor(
    server: TestClient,
) -> None:
    """The page memo keys pages by whether the request was relayed: the button a direct
    visitor got must not reach a visitor behind a proxy (the click would only be refused)."""
    link = preset_link("cow-basic", "5.9")
    direct = LexborHTMLParser(server.get(link).text)
    assert direct.css_first(".probe-box form") is not None
    relayed = LexborHTMLParser(server.get(link, headers={"X-Forwarded-For": "1.2.3.4"}).text)
    assert relayed.css_first(".probe-box form") is None


# ------------------------------------------------------------------------ legitimate use
def test_the_button_of_a_page_runs_the_probe_from_the_same_origin(
    server: TestClient, runs: list[str]
) -> None:
    status, text = post_form(server, SAME_ORIGIN)
    assert status == 200 and "On this server's kernel" in text
    assert runs == ["run"]


@pytest.mark.parametrize("name", ["localhost:8000", "[::1]:8000"])
def test_every_loopback_name_of_the_server_may_probe(
    server: TestClient, runs: list[str], name: str
) -> None:
    token = token_on_page(server, headers={"Host": name})
    headers = {"Host": name, "Origin": f"http://{name}", "Sec-Fetch-Site": "same-origin"}
    status, _text = post_form(server, headers, token=token)
    assert status == 200 and runs == ["run"]


def test_a_token_is_valid_in_every_worker_of_one_server(runs: list[str]) -> None:
    # Two apps from one environment are two workers of one `cowlab serve`.
    first, second = (create_app(ProbeSettings.from_environ(LOOPBACK.to_environ())) for _ in "ab")
    with TestClient(first, base_url=HERE) as a, TestClient(second, base_url=HERE) as b:
        status, _text = post_form(b, SAME_ORIGIN, token=token_on_page(a))
    assert status == 200 and runs == ["run"]


def test_a_program_on_this_machine_may_use_the_json_api(
    server: TestClient, runs: list[str]
) -> None:
    # curl sends neither Origin nor Sec-Fetch-Site; a browser cannot post JSON cross-site
    # without a preflight cowlab never grants.
    response = server.post("/api/v1/probe", json={"scenario": SCENARIO})
    assert response.status_code == 200 and runs == ["run"]


def test_a_refused_plain_form_post_gets_a_whole_page_and_htmx_a_fragment(
    server: TestClient,
) -> None:
    cross = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    data = {"s": SCENARIO, gate.TOKEN_FIELD: token_on_page(server)}
    plain = server.post("/probe", data=data, headers=cross)
    fragment = server.post("/probe", data=data, headers={**cross, "HX-Request": "true"})
    page = LexborHTMLParser(plain.text)
    assert plain.status_code == fragment.status_code == 403
    assert page.css_first("title") is not None and page.css_first("main") is not None
    assert "may not run the probe" in page.text(deep=True)
    assert LexborHTMLParser(fragment.text).css_first("title") is None
    assert "https://evil.example" in fragment.text
    assert "HX-Request" in plain.headers["vary"]
