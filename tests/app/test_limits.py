"""Bounded inputs (DESIGN.md §7) at every door: links, form posts, the API, the CLI.

An oversized request is refused before anything reads it, with the status that names the
problem (413 body, 414 link, 431 headers) and a body that says which limit: an HTML page for
pages, the API's JSON problem for ``/api``. Requests are sent straight through the ASGI app
here, because an HTTP client refuses to build some of them.
"""

from __future__ import annotations

import base64
import json
import zlib
from urllib.parse import quote, urlencode

import pytest
from starlette.testclient import TestClient

from app.cli.main import main as cli_main
from app.http.guard import MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_QUERY_BYTES
from app.http.main import create_app
from engine.limits import MAX_DECOMPRESSED_BYTES, MAX_LINK_SCENARIO_BYTES
from tests.app import asgi
from tests.app.asgi import Answer
from tests.app.conftest import html

APP = create_app()


def send(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    chunks: list[bytes] | None = None,
) -> Answer:
    return asgi.send(APP, method, path, query=query, headers=headers, chunks=chunks)


def problem_page(answer: Answer) -> str:
    """The text of the error page's problem section (and a check that it is a page)."""
    assert answer.headers["content-type"].startswith("text/html")
    node = html(answer.text).css_first(".problem")
    assert node is not None
    return str(node.text())


# ------------------------------------------------------------------------------ links


def test_query_over_the_limit_is_a_414_page_naming_the_limit() -> None:
    answer = send("GET", "/", query="s=" + "x" * MAX_QUERY_BYTES)
    assert answer.status == 414
    text = problem_page(answer)
    assert "query" in text and f"{MAX_QUERY_BYTES:,}" in text
    # Refused at the door, but still with the security headers of every response.
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_largest_legal_link_passes_the_door_even_fully_escaped() -> None:
    write = "P write a " + "v" * 32 + ";"  # the longest value the language allows
    text = "P mmap a;" + write * ((MAX_LINK_SCENARIO_BYTES - 9) // len(write))
    assert MAX_LINK_SCENARIO_BYTES - len(write) < len(text) <= MAX_LINK_SCENARIO_BYTES
    query = "v=1&s=" + quote(text, safe="") + "&policy=5.7&step=3"
    assert len(query) <= MAX_QUERY_BYTES
    assert send("GET", "/", query=query).status == 200


def test_s_longer_than_links_carry_is_a_414_page_naming_s() -> None:
    query = urlencode({"s": "P mmap a;" * (MAX_LINK_SCENARIO_BYTES // 9 + 1)})
    text = problem_page(answer := send("GET", "/", query=query))
    assert answer.status == 414
    assert "“s”" in text and f"{MAX_LINK_SCENARIO_BYTES:,}" in text


def test_zip_bomb_in_a_link_is_a_413_page_not_an_inflated_scenario() -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = comp.compress(b"P read a\n" * 400_000) + comp.flush()  # 3.6 MB in ~7 KB
    s = "z:" + base64.urlsafe_b64encode(bomb).rstrip(b"=").decode()
    assert len(s) < MAX_LINK_SCENARIO_BYTES
    answer = send("GET", "/", query=urlencode({"s": s}))
    assert answer.status == 413
    assert f"{MAX_DECOMPRESSED_BYTES:,}" in problem_page(answer)


def test_an_added_command_cannot_carry_the_scenario_past_the_limits() -> None:
    query = urlencode({"s": "P mmap a", "add": "P read a;" * 4500})
    answer = send("GET", "/", query=query)
    assert answer.status == 413
    assert "more than 1000 commands" in problem_page(answer)


def test_repeated_policies_are_compared_once(client: TestClient) -> None:
    once = client.get("/compare", params={"s": "P mmap a;P write a x", "policies": "5.7,6.2"})
    many = client.get(
        "/compare", params={"s": "P mmap a;P write a x", "policies": ",".join(["5.7", "6.2"] * 900)}
    )
    assert many.status_code == once.status_code == 200
    assert many.text == once.text


# ------------------------------------------------------------------------------ bodies


def test_declared_oversized_body_is_refused_before_it_is_read() -> None:
    answer = send(
        "POST",
        "/api/v1/simulate",
        headers={"content-type": "application/json", "content-length": str(50 * 2**20)},
        chunks=[b"{" * 1024],
    )
    assert answer.status == 413
    assert answer.read == 0
    problem = answer.json()["detail"]
    assert problem["error"] == "limit" and problem["limit"] == "body"
    assert f"{MAX_BODY_BYTES:,}" in problem["message"]
    assert answer.headers["connection"] == "close"


def test_body_without_a_length_is_cut_off_where_it_crosses_the_limit() -> None:
    chunk = b" " * (256 * 1024)
    answer = send(
        "POST",
        "/api/v1/simulate",
        headers={"content-type": "application/json"},
        chunks=[chunk] * 40,  # 10 MB, streamed
    )
    assert answer.status == 413
    assert answer.read <= MAX_BODY_BYTES // len(chunk) + 2
    assert "larger than" in answer.json()["detail"]["message"]


def test_form_post_over_the_limit_is_an_html_page() -> None:
    answer = send(
        "POST",
        "/probe",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "content-length": str(MAX_BODY_BYTES + 1),
        },
    )
    assert answer.status == 413
    assert "body" in problem_page(answer)


def test_a_length_that_is_not_a_number_is_refused() -> None:
    answer = send(
        "POST",
        "/api/v1/simulate",
        headers={"content-type": "application/json", "content-length": "12, 13"},
    )
    assert answer.status == 413


def test_a_body_just_under_the_limit_reaches_the_model_which_bounds_the_scenario() -> None:
    scenario = "P mmap a\n" + "#" * (MAX_DECOMPRESSED_BYTES + 10)
    body = json.dumps({"scenario": scenario}).encode()
    assert len(body) < MAX_BODY_BYTES
    answer = send(
        "POST",
        "/api/v1/simulate",
        headers={"content-type": "application/json", "content-length": str(len(body))},
        chunks=[body],
    )
    assert answer.status == 422


def test_headers_over_the_limit_are_431() -> None:
    answer = send("GET", "/", headers={"x-padding": "y" * MAX_HEADER_BYTES})
    assert answer.status == 431
    assert "headers" in problem_page(answer)


def test_api_refusals_are_json() -> None:
    answer = send("GET", "/api/v1/probe", query="junk=" + "x" * MAX_QUERY_BYTES)
    assert answer.status == 414
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["detail"]["limit"] == "query"


# ------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize("source", ["/dev/zero", "/dev/urandom"])
def test_cli_reads_an_endless_file_only_up_to_the_limit(
    source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["run", source]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cowlab: ") and "Traceback" not in err
