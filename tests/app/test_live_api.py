"""Live sessions through the JSON API and the pages, in-process (DESIGN.md §9, issue 15)."""

from __future__ import annotations

import re

import pytest
from selectolax.lexbor import LexborHTMLParser
from starlette.testclient import TestClient

from app.live.rooms import CODE_ALPHABET, IDLE_SECONDS
from app.views.links import make_link
from tests.app.live_support import LESSON, LINK, PIPE, Clock, live_app, start


@pytest.fixture
def client() -> TestClient:
    app, _ = live_app()
    return TestClient(app)


def test_a_room_starts_from_a_link_and_shows_its_step(client: TestClient) -> None:
    answer = client.post("/api/v1/live", json={"link": "http://elsewhere" + LINK}).json()
    assert re.fullmatch(f"[{CODE_ALPHABET}]{{6}}", answer["code"])
    assert answer["join_url"] == f"http://testserver/live/{answer['code']}"
    # 32 random bytes in base64url: 256 bits.
    assert len(answer["teacher_key"]) == 43
    state = client.get(f"/api/v1/live/{answer['code']}").json()
    assert state == {
        "code": answer["code"],
        "link": LINK,
        "policy": "5.7",
        "step": 2,
        "view": "simulator",
        "students": 0,
        "poll": None,
        "can_poll": False,
    }


def test_codes_are_typed_in_any_case_with_spaces(client: TestClient) -> None:
    code, _ = start(client)
    typed = f" {code[:3].lower()} {code[3:]} "
    answer = client.get("/live", params={"code": typed}, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, f"/live/{code}")


def test_unknown_room_is_404_as_json_and_as_a_page(client: TestClient) -> None:
    for path in ("/api/v1/live/ACDEFG", "/api/v1/live/nope"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert answer.json()["detail"]["error"] == "unknown-room"
    assert client.get("/live/ACDEFG").status_code == 404
    assert client.get("/live/ACDEFG/events").status_code == 404
    page = client.get("/live", params={"code": "ACDEFG"})
    assert page.status_code == 404
    assert "no live session has the code" in page.text


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_only_the_teachers_key_changes_the_room(
    client: TestClient, headers: dict[str, str]
) -> None:
    code, _ = start(client)
    for path, body in (("state", {"step": 4}), ("poll", None), ("reveal", None)):
        answer = client.post(f"/api/v1/live/{code}/{path}", json=body, headers=headers)
        assert answer.status_code == 403
        assert answer.json()["detail"]["error"] == "forbidden"
    assert client.get(f"/api/v1/live/{code}").json()["step"] == 2


def test_the_teacher_steps_switches_era_and_view(client: TestClient) -> None:
    code, key = start(client)
    state = client.post(f"/api/v1/live/{code}/state", json={"step": 4}, headers=key).json()
    assert (state["step"], state["link"], state["can_poll"]) == (
        4,
        make_link("/", LESSON, policy="5.7", step=4),
        True,
    )
    # Another era keeps the step, as `[` and `]` do on the page.
    state = client.post(f"/api/v1/live/{code}/state", json={"policy": "latest"}, headers=key)
    assert (state.json()["policy"], state.json()["step"]) == ("6.15", 4)
    state = client.post(f"/api/v1/live/{code}/state", json={"view": "compare"}, headers=key)
    assert state.json()["link"] == make_link("/compare", LESSON, step=4)
    # A link sets everything at once; without a step it shows the last one, as the page does.
    link = make_link("/", "P mmap a;P read a", policy="5.9")
    state = client.post(f"/api/v1/live/{code}/state", json={"link": link}, headers=key).json()
    assert (state["view"], state["policy"], state["step"]) == ("simulator", "5.9", 2)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"step": 99}, "step"),
        ({"policy": "4.2"}, "policy"),
        ({"scenario": "P frobnicate a"}, "scenario"),
        ({"link": "/presets?v=1"}, "link"),
        ({"link": "/?v=9&s=P+mmap+a"}, "link"),
    ],
)
def test_refused_changes_say_why_and_change_nothing(
    client: TestClient, body: dict[str, object], error: str
) -> None:
    code, key = start(client)
    answer = client.post(f"/api/v1/live/{code}/state", json=body, headers=key)
    assert answer.status_code == 400
    assert answer.json()["detail"]["error"] == error
    assert client.get(f"/api/v1/live/{code}").json()["link"] == LINK


def test_message_sizes_are_bounded(client: TestClient) -> None:
    code, key = start(client)
    huge = "/?v=1&s=" + "P+read+a;" * 10_000
    assert client.post("/api/v1/live", json={"link": huge}).status_code == 422
    answer = client.post(f"/api/v1/live/{code}/state", json={"link": huge}, headers=key)
    assert answer.status_code == 422
    client.post(f"/api/v1/live/{code}/state", json={"step": 4}, headers=key)
    client.post(f"/api/v1/live/{code}/poll", headers=key)
    assert client.post(f"/api/v1/live/{code}/vote", json={"choice": "x" * 65}).status_code == 422
    unknown = client.post(f"/api/v1/live/{code}/state", json={"step": 1, "key": 1}, headers=key)
    assert unknown.status_code == 422


def test_a_poll_counts_one_answer_per_student_until_the_reveal() -> None:
    app, _ = live_app()
    teacher = TestClient(app)
    code, key = start(teacher)
    at_write = teacher.post(f"/api/v1/live/{code}/poll", headers=key)
    assert at_write.status_code == 409  # step 2 writes: there is nothing to predict
    teacher.post(f"/api/v1/live/{code}/state", json={"step": 4}, headers=key)
    poll = teacher.post(f"/api/v1/live/{code}/poll", headers=key).json()["poll"]
    assert poll["choices"] == ["0", "x"]
    assert (poll["command"], poll["answer"], poll["revealed"]) == ("C read a", None, False)
    ann, bob = TestClient(app), TestClient(app)
    for student in (ann, bob):
        assert student.get(f"/live/{code}").status_code == 200  # joins: the page sets its id
    ann.post(f"/api/v1/live/{code}/vote", json={"choice": "0"})
    ann.post(f"/api/v1/live/{code}/vote", json={"choice": "x"})  # changed her mind
    bob.post(f"/api/v1/live/{code}/vote", json={"choice": "0"})
    poll = teacher.get(f"/api/v1/live/{code}").json()["poll"]
    assert (poll["counts"], poll["answered"]) == ([1, 1], 2)
    assert ann.post(f"/api/v1/live/{code}/vote", json={"choice": "7"}).status_code == 400
    revealed = teacher.post(f"/api/v1/live/{code}/reveal", headers=key).json()["poll"]
    assert (revealed["answer"], revealed["revealed"]) == ("x", True)
    assert "C reads a" in revealed["why"]
    late = bob.post(f"/api/v1/live/{code}/vote", json={"choice": "x"})
    assert late.status_code == 409
    assert teacher.get(f"/api/v1/live/{code}").json()["poll"]["counts"] == [1, 1]


def test_a_poll_repeated_in_another_era_has_the_same_choices_and_its_own_answer(
    client: TestClient,
) -> None:
    code, key = start(client, make_link("/", PIPE, policy="5.7"))
    first = client.post(f"/api/v1/live/{code}/poll", headers=key).json()["poll"]
    first = client.post(f"/api/v1/live/{code}/reveal", headers=key).json()["poll"]
    switched = client.post(f"/api/v1/live/{code}/state", json={"policy": "6.2"}, headers=key)
    assert switched.json()["poll"] is None  # the class looks at something else now
    second = client.post(f"/api/v1/live/{code}/poll", headers=key).json()["poll"]
    second = client.post(f"/api/v1/live/{code}/reveal", headers=key).json()["poll"]
    assert first["choices"] == second["choices"] == ["0", "p1", "p3"]
    assert (first["id"], first["policy"], first["answer"]) == (1, "5.7", "p3")
    assert (second["id"], second["policy"], second["answer"]) == (2, "6.2", "p1")


def test_rooms_and_polls_are_bounded() -> None:
    app, _ = live_app(max_rooms=2, max_polls=1)
    client = TestClient(app)
    code, key = start(client)
    start(client)
    third = client.post("/api/v1/live", json={"link": LINK})
    assert (third.status_code, third.json()["detail"]["error"]) == (503, "rooms-full")
    client.post(f"/api/v1/live/{code}/state", json={"step": 4}, headers=key)
    assert client.post(f"/api/v1/live/{code}/poll", headers=key).status_code == 200
    again = client.post(f"/api/v1/live/{code}/poll", headers=key)
    assert (again.status_code, again.json()["detail"]["error"]) == (429, "polls")


def test_idle_rooms_expire_and_a_teachers_action_keeps_one_alive() -> None:
    clock = Clock()
    app, _ = live_app(clock=clock)
    client = TestClient(app)
    busy, key = start(client)
    idle, _ = start(client)
    clock.now += IDLE_SECONDS - 60
    client.post(f"/api/v1/live/{busy}/state", json={"step": 3}, headers=key)
    clock.now += 120
    assert client.get(f"/api/v1/live/{idle}").status_code == 404
    assert client.get(f"/api/v1/live/{busy}").status_code == 200
    # An expired room frees its place: the bound counts live rooms only.
    assert len(app.state.live.broker.rooms) == 1


def test_go_live_keeps_the_key_in_a_strict_http_only_cookie(client: TestClient) -> None:
    answer = client.post("/live", data={"link": LINK}, follow_redirects=False)
    assert answer.status_code == 303
    code = answer.headers["location"].split("/")[2]
    assert answer.headers["location"] == f"/live/{code}/teach"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"cowlab_teacher_{code}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    key = cookie.split(";")[0].split("=", 1)[1]
    assert client.get(f"/live/{code}/teach").status_code == 200
    # The cookie is the key: the page's own API requests carry it.
    stepped = client.post(f"/api/v1/live/{code}/state", json={"step": 3})
    assert stepped.status_code == 200
    stranger = TestClient(client.app)
    assert stranger.get(f"/live/{code}/teach").status_code == 403
    # No student-facing answer carries the key.
    for path in (f"/live/{code}", f"/live/{code}/screen", f"/api/v1/live/{code}"):
        assert key not in stranger.get(path).text


def test_live_pages_run_no_inline_script_or_style(client: TestClient) -> None:
    code, _ = start(client)
    client.post("/live", data={"link": LINK})
    for path in ("/live", f"/live/{code}", f"/live/{code}/screen", "/live?code=XXXXXX"):
        answer = client.get(path)
        assert "'unsafe-inline'" not in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
        tree = LexborHTMLParser(answer.text)
        for script in tree.css("script"):
            assert script.attributes.get("src"), path
        for node in tree.css("*"):
            names = set(node.attributes)
            assert "style" not in names, (path, node.tag)
            assert not {n for n in names if n.startswith("on")}, (path, node.tag)


def test_the_projector_screen_shows_the_code_and_a_qr_code_of_the_join_link(
    client: TestClient,
) -> None:
    code, _ = start(client)
    tree = LexborHTMLParser(client.get(f"/live/{code}/screen").text)
    big = tree.css_first(".live-big-code")
    assert big is not None and big.text() == code
    svg = tree.css_first("figure.live-qr svg")
    title = svg.css_first("title") if svg is not None else None
    assert title is not None and title.text() == (f"QR code of http://testserver/live/{code}")


def test_the_go_live_control_sits_on_the_simulator_and_compare_pages(client: TestClient) -> None:
    pages = [(LINK, LINK), (make_link("/compare", LESSON), make_link("/compare", LESSON, step=7))]
    for path, followed in pages:
        form = LexborHTMLParser(client.get(path).text).css_first("form.golive")
        assert form is not None and form.attributes["action"] == "/live"
        # Without scripts the button starts from the page it was pressed on.
        referred = client.post(
            "/live", headers={"Referer": f"http://testserver{path}"}, follow_redirects=True
        )
        code = referred.url.path.split("/")[2]
        assert client.get(f"/api/v1/live/{code}").json()["link"] == followed
    assert LexborHTMLParser(client.get("/presets").text).css_first("form.golive") is None


def test_the_api_is_documented_in_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/live",
        "/api/v1/live/{code}",
        "/api/v1/live/{code}/state",
        "/api/v1/live/{code}/poll",
        "/api/v1/live/{code}/vote",
        "/api/v1/live/{code}/reveal",
        "/live/{code}/events",
    ):
        assert path in paths, path
    assert set(paths["/api/v1/live/{code}/state"]["post"]["responses"]) >= {"200", "403", "404"}


def test_one_address_cannot_take_every_room() -> None:
    app, _ = live_app(max_rooms=10, max_rooms_per_client=2)
    client = TestClient(app)
    start(client)
    start(client)
    third = client.post("/api/v1/live", json={"link": LINK})
    assert (third.status_code, third.json()["detail"]["error"]) == (429, "rooms-per-client")
    assert "2 live sessions" in third.json()["detail"]["message"]
    # Another address still gets a room: the bound is per client, not per server.
    other = TestClient(app, client=("203.0.113.7", 50000))
    assert other.post("/api/v1/live", json={"link": LINK}).status_code == 201
