"""Fuzzing the web layer with valid and broken scenarios (tests/strategies.py).

Every route that takes a scenario — `/` (whole page, the htmx step and action requests, the
`add=` action), `/embed`, `/export.svg`, `/export.c`, `/realcode` (page and htmx fragment),
`/compare` and `POST /api/v1/simulate` — is asked with
the scenario plain and as `z:`, random `step=` values (in range, past the end, malformed) and
random `policy=` values. No answer is a 5xx or shows a traceback; a request whose every part is
valid is answered 200; a broken scenario is a 4xx that names its line and column; every HTML
answer parses into the page or fragment asked for and every SVG is well-formed XML.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
import zlib
from typing import Any, TypeVar

from httpx2 import Response
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from app.views.sim import TIMELINE_ALL
from engine.policies import POLICIES, UnknownPolicy, get_policy
from engine.syntax import ScenarioError, parse
from tests.app.conftest import HTMX, html, hx
from tests.strategies import (
    fuzz_examples,
    invalid_scenarios,
    large_scenario,
    lessons,
    mutated_scenarios,
    scenarios,
    swap_scenarios,
)

FUZZ = settings(
    max_examples=fuzz_examples(50),
    deadline=None,
    # `client` is session-scoped: one app for every example, as a worker serves every request.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

KNOWN_CRASHES = (
    "P mmap b file=F; P fork D",
    "P mmap a; P write a v1; P swapout a; P fork C; P read a; P swapout a; C read a",
)

# (path, the element id an htmx request targets, or None for a plain request)
PAGE_REQUESTS = (
    ("/", None),
    ("/", "stage"),
    ("/", "sim"),
    ("/", "full"),  # htmx's history restore: HX-Request without a partial target
    ("/embed", None),
    ("/embed", "embed"),
    ("/export.svg", None),
    ("/export.c", None),
    ("/realcode", None),
    ("/realcode", "realcode-body"),
    ("/compare", None),
    ("/compare", "cmp-stage"),
    ("/compare", "compare"),
    ("/", "timeline"),  # a target no route builds a fragment for
    ("/compare", "bogus"),
)
T = TypeVar("T")


def mostly(usual: st.SearchStrategy[T], odd: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """``usual`` four times in five: most requests should go all the way to a drawing, and the
    odd values (unknown ids, malformed steps, broken text) still reach every error page."""
    return st.sampled_from((True, True, True, True, False)).flatmap(
        lambda usual_one: usual if usual_one else odd
    )


ODD_POLICIES = ("", "bogus", "5.8 ", "LATEST", "5.7,5.8", "z:", "%00", "5.8-break")
policy_values = mostly(st.sampled_from((*POLICIES, "latest")), st.sampled_from(ODD_POLICIES))
ODD_STEPS = ("", "-1", "abc", "9999999", "99999999", " 3", "1e3", "٣", "0x1", "1.0")
step_values = mostly(st.one_of(st.none(), st.integers(0, 40).map(str)), st.sampled_from(ODD_STEPS))
text_values = mostly(
    # Swap-heavy scenarios too: a swap-in crash was once a 500 on every route (issue 14).
    st.one_of(scenarios(), swap_scenarios(), lessons()),
    st.one_of(
        invalid_scenarios().map(lambda broken: broken.text),
        mutated_scenarios(),
        st.sampled_from(KNOWN_CRASHES),
    ),
)


def z_form(text: str) -> str:
    """The compressed link form of DESIGN.md §5, built here independently of app.views.links."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = deflate.compress(text.encode("utf-8")) + deflate.flush()
    return "z:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def syntax_error(text: str) -> ScenarioError | None:
    try:
        parse(text)
    except ScenarioError as exc:
        return exc
    return None


def policy_known(policy: str | None) -> bool:
    # An empty or absent policy means `latest`.
    if not policy:
        return True
    try:
        get_policy(policy)
    except UnknownPolicy:
        return False
    return True


def step_readable(step: str | None) -> bool:
    return step in (None, "") or (step.isdecimal() and len(step) <= 7)


def headers_for(target: str | None) -> dict[str, str]:
    if target is None:
        return {}
    if target == "full":
        return {"HX-Request": "true", "HX-Request-Type": "full"}
    return hx(target)


# The element a whole page of each route is built around (the embed has minimal chrome).
PAGE_ROOT = {
    "/": "body main",
    "/compare": "body main",
    "/embed": "body > main",  # the embed view is a landmark of its own
    "/export.svg": "body main",  # its errors are the simulator page's
    "/export.c": "body main",
    "/realcode": "body main",
}


def check_answer(r: Response, path: str, partial: bool) -> None:
    """What every answer must be, whatever was asked: no 5xx, no traceback, a parseable body."""
    body, status = r.content, r.status_code
    assert status < 500, body[:2000]
    assert b"Traceback" not in body
    if status == 303:
        assert r.headers["location"].startswith("/?v=1")
        return
    content_type = r.headers["content-type"]
    if content_type.startswith("text/x-csrc"):
        # The program: its header comment, the scenario's dimensions, main() at the end.
        text = body.decode("utf-8")
        assert text.startswith("/* cowlab export c") and "\nint main(" in text
        assert r.headers["content-disposition"].startswith("attachment")
    elif content_type.startswith("image/svg+xml"):
        root = ET.fromstring(body)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    elif content_type.startswith("text/html"):
        doc = html(body.decode("utf-8"))
        if partial:
            # A fragment for htmx to swap in, never a whole page nested inside the page.
            assert b"<html" not in body and b"<body" not in body
            assert doc.body is not None and doc.body.child is not None
        else:
            assert doc.css_first("head > title") is not None
            assert doc.css_first(PAGE_ROOT[path]) is not None
    else:
        raise AssertionError(f"unexpected content type {content_type}")


@FUZZ
@given(
    text=text_values,
    compressed=st.booleans(),
    request=st.sampled_from(PAGE_REQUESTS),
    step=step_values,
    policy=policy_values,
    policies=mostly(st.none(), st.lists(policy_values, max_size=3).map(",".join)),
    add=mostly(st.none(), st.one_of(scenarios(max_commands=1), st.just("P frobnicate a"))),
    view=st.sampled_from((None, "present", "normal", "bogus")),
    checkboxes=mostly(st.just([]), st.lists(policy_values, max_size=3)),
)
@example(
    text=KNOWN_CRASHES[0], compressed=False, request=("/", None), step=None, policy="",
    policies=None, add=None, view=None, checkboxes=[],
)  # fmt: skip
def test_page_routes_never_fail_and_answer_what_was_asked(
    client: TestClient,
    text: str,
    compressed: bool,
    request: tuple[str, str | None],
    step: str | None,
    policy: str,
    policies: str | None,
    add: str | None,
    view: str | None,
    checkboxes: list[str],
) -> None:
    path, target = request
    params: dict[str, Any] = {"v": "1", "s": z_form(text) if compressed else text}
    if step is not None:
        params["step"] = step
    params["policy"] = policy
    if view is not None:
        params["view"] = view
    if path == "/compare":
        if policies is not None:
            params["policies"] = policies
        if checkboxes:
            params["p"] = checkboxes  # the compare form's policy checkboxes
    full_text = text
    if path == "/" and add:
        params["add"] = add
        # Appended on a line of its own: a `#` comment at the end of the text would swallow it.
        full_text = f"{text}\n{add}" if text.strip() else add
    r = client.get(path, params=params, headers=headers_for(target), follow_redirects=False)
    partial = target not in (None, "full")
    # `pytest --hypothesis-show-statistics` shows how often each answer came up.
    event(f"{path} answered {r.status_code}")
    check_answer(r, path, partial)

    error = syntax_error(full_text)
    if path == "/compare":
        # The checkboxes, when ticked, win over `policies=` (whose empty items are skipped).
        if checkboxes:
            policy_ok = all(p and policy_known(p) for p in checkboxes)
        else:
            chosen = [p.strip() for p in (policies or "").split(",") if p.strip()]
            policy_ok = all(policy_known(p) for p in chosen)
    else:
        policy_ok = policy_known(policy)
    nothing_to_export = path == "/export.c" and error is None and not parse(full_text).commands
    if error is None and policy_ok and step_readable(step) and not nothing_to_export:
        redirect = path == "/" and add and target in (None, "full")
        assert r.status_code == (303 if redirect else 200)
    else:
        assert 400 <= r.status_code < 500
    if error is not None and policy_ok and step_readable(step):
        # The error page says where the text went wrong.
        assert r.status_code == 400
        assert f"line {error.line}, column {error.column}" in r.text


@settings(max_examples=fuzz_examples(6), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    seed=st.integers(0, 2**32 - 1),
    commands=st.integers(TIMELINE_ALL + 1, 2 * TIMELINE_ALL),
    request=st.sampled_from(PAGE_REQUESTS),
    step=step_values,
)
def test_page_routes_draw_scenarios_past_what_one_picture_holds(
    client: TestClient, seed: int, commands: int, request: tuple[str, str | None], step: str | None
) -> None:
    # Dozens of processes mapping 256 pages each and a timeline longer than it lists whole:
    # the views draw a window of the timeline and the focus of each step.
    text = large_scenario(seed, commands)
    path, target = request
    params = {"v": "1", "s": z_form(text), **({"step": step} if step is not None else {})}
    r = client.get(path, params=params, headers=headers_for(target), follow_redirects=False)
    check_answer(r, path, target not in (None, "full"))
    if path == "/export.c" and r.status_code == 413:
        # Writing the program replays every era: it takes scenarios up to a lower weight.
        assert "too large to export" in r.text
        return
    assert r.status_code == (200 if step_readable(step) else 400)


@FUZZ
@given(text=text_values, odd_policy=policy_values)
@example(text=KNOWN_CRASHES[1], odd_policy="5.19")
def test_the_api_answers_every_scenario_under_every_policy(
    client: TestClient, text: str, odd_policy: str
) -> None:
    for policy in (*POLICIES, "latest", odd_policy):
        r = client.post("/api/v1/simulate", json={"scenario": text, "policy": policy})
        assert r.status_code < 500, r.text[:2000]
        check_simulate_answer(r.status_code, r.json(), text, policy)


def check_simulate_answer(status: int, body: Any, text: str, policy: str) -> None:
    error = syntax_error(text)
    if not policy or not policy_known(policy):
        # The policy is read first; the API has no default for an empty one.
        assert status == 400 and body["detail"]["error"] == "unknown-policy"
    elif error is not None:
        assert status == 400
        assert body["detail"]["error"] == "syntax"
        assert (body["detail"]["line"], body["detail"]["column"]) == (error.line, error.column)
    else:
        assert status == 200
        assert body["policy"] == get_policy(policy).id
        assert [step["index"] for step in body["steps"]] == list(
            range(1, len(parse(text).commands) + 1)
        )


def test_htmx_partial_constant_is_the_one_conftest_sends() -> None:
    # headers_for builds on conftest's HTMX headers; a change there must not silently turn
    # the partial requests above into whole-page requests.
    assert hx("stage")["HX-Request-Type"] == HTMX["HX-Request-Type"] == "partial"
