"""A room across a lecture (DESIGN.md §9 "Rooms across a lecture", issue 20), in-process: the
era of what went live, another lesson in the same room, the end of the room, votes only from
joined pages, the poll's countdown and its CSV, and the bounds a public server needs."""

from __future__ import annotations

import csv
import io

import pytest
from starlette.testclient import TestClient

from app.live.rooms import MAX_COUNTDOWN_S, MIN_COUNTDOWN_S
from app.views.links import make_link
from engine.lessons import LESSONS
from engine.policies import get_policy
from tests.app.live_support import LESSON, LINK, Clock, live_app, start


def lesson(policy: str) -> str:
    """A shipped lesson whose `#policy` is ``policy``: the era its story happens in."""
    return next(text.text for text in LESSONS.values() if text.policy == policy)


@pytest.fixture
def client() -> TestClient:
    app, _ = live_app()
    return TestClient(app)


@pytest.mark.parametrize("era", ["4.8", "5.7"])
def test_a_lesson_goes_live_under_its_own_era(client: TestClient, era: str) -> None:
    text = lesson(era)
    at_start = make_link("/", text, step=0)  # the lesson page's link at step 0: no policy=
    code, _ = start(client, at_start)
    state = client.get(f"/api/v1/live/{code}").json()
    assert (state["policy"], state["step"]) == (era, 0)
    assert f"policy={era}" in state["link"]
    # The "Go live" button sends the same link: the same era.
    page = client.post("/live", data={"link": at_start}, follow_redirects=False)
    by_button = page.headers["location"].split("/")[2]
    assert client.get(f"/api/v1/live/{by_button}").json()["policy"] == era


def test_a_link_that_names_its_era_keeps_it_and_one_without_either_is_the_newest(
    client: TestClient,
) -> None:
    named, _ = start(client, make_link("/", lesson("5.7"), policy="6.2", step=0))
    assert client.get(f"/api/v1/live/{named}").json()["policy"] == "6.2"
    plain, _ = start(client, make_link("/", "P mmap a;P read a"))
    assert client.get(f"/api/v1/live/{plain}").json()["policy"] == get_policy("latest").id


def test_another_lesson_loads_into_the_same_room_under_its_era(client: TestClient) -> None:
    code, key = start(client)  # LINK: 5.7, step 2
    client.post(f"/api/v1/live/{code}/state", json={"step": 4}, headers=key)
    assert client.post(f"/api/v1/live/{code}/poll", headers=key).status_code == 200
    second = make_link("/", lesson("4.8"), step=0)
    state = client.post(f"/api/v1/live/{code}/state", json={"link": second}, headers=key).json()
    assert (state["code"], state["policy"], state["step"], state["poll"]) == (code, "4.8", 0, None)
    # The students' page and stream still use the same code.
    assert client.get(f"/live/{code}").status_code == 200


def test_the_teacher_ends_the_room_and_nobody_else_can(client: TestClient) -> None:
    code, key = start(client)
    stranger = TestClient(client.app)
    refused = stranger.delete(f"/api/v1/live/{code}")
    assert (refused.status_code, refused.json()["detail"]["error"]) == (403, "forbidden")
    ended = client.delete(f"/api/v1/live/{code}", headers=key)
    assert (ended.status_code, ended.json()) == (200, {"code": code, "ended": True})
    gone = client.get(f"/api/v1/live/{code}")
    assert (gone.status_code, gone.json()["detail"]["error"]) == (404, "ended")
    assert client.get(f"/live/{code}").status_code == 404
    assert client.delete(f"/api/v1/live/{code}", headers=key).status_code == 404
    # A whole hall asking about the ended room (pages reconnecting) is not guessing codes.
    hall = TestClient(client.app, client=("192.0.2.7", 40000))
    assert {hall.get(f"/api/v1/live/{code}").status_code for _ in range(100)} == {404}


def test_a_vote_counts_only_from_a_page_that_joined_the_room(client: TestClient) -> None:
    code, key = start(client)
    other, _ = start(client)
    client.post(f"/api/v1/live/{code}/state", json={"step": 4}, headers=key)
    client.post(f"/api/v1/live/{code}/poll", headers=key)
    scripted = TestClient(client.app)
    for _ in range(3):  # no cookie: each would have been a new student
        answer = scripted.post(f"/api/v1/live/{code}/vote", json={"choice": "x"})
        assert (answer.status_code, answer.json()["detail"]["error"]) == (403, "not-joined")
    made_up = TestClient(client.app, cookies={"cowlab_student": "a" * 22})
    assert made_up.post(f"/api/v1/live/{code}/vote", json={"choice": "x"}).status_code == 403
    elsewhere = TestClient(client.app)
    elsewhere.get(f"/live/{other}")  # joined another room: not this one
    assert elsewhere.post(f"/api/v1/live/{code}/vote", json={"choice": "x"}).status_code == 403
    student = TestClient(client.app)
    student.get(f"/live/{code}")
    assert student.post(f"/api/v1/live/{code}/vote", json={"choice": "x"}).status_code == 200
    assert client.get(f"/api/v1/live/{code}").json()["poll"]["counts"] == [0, 1]


def test_a_countdown_closes_the_poll_to_votes() -> None:
    clock = Clock()
    app, _ = live_app(clock=clock)
    teacher = TestClient(app)
    code, key = start(teacher)
    teacher.post(f"/api/v1/live/{code}/state", json={"step": 4}, headers=key)
    no_poll = teacher.post(f"/api/v1/live/{code}/countdown", json={"seconds": 30}, headers=key)
    assert (no_poll.status_code, no_poll.json()["detail"]["error"]) == (409, "no-poll")
    poll = teacher.post(f"/api/v1/live/{code}/poll", headers=key).json()["poll"]
    assert (poll["closes_at"], poll["seconds_left"], poll["closed"]) == (None, None, False)
    for seconds in (MIN_COUNTDOWN_S - 1, MAX_COUNTDOWN_S + 1):
        bad = teacher.post(f"/api/v1/live/{code}/countdown", json={"seconds": seconds}, headers=key)
        assert bad.status_code == 422
    student = TestClient(app)
    assert student.post(f"/api/v1/live/{code}/countdown", json={"seconds": 30}).status_code == 403
    poll = teacher.post(f"/api/v1/live/{code}/countdown", json={"seconds": 30}, headers=key).json()[
        "poll"
    ]
    assert (poll["closes_at"], poll["seconds_left"], poll["closed"]) == (clock.now + 30, 30, False)
    student.get(f"/live/{code}")
    clock.now += 12.5
    assert teacher.get(f"/api/v1/live/{code}").json()["poll"]["seconds_left"] == 18
    assert student.post(f"/api/v1/live/{code}/vote", json={"choice": "0"}).status_code == 200
    clock.now += 18
    closed = student.post(f"/api/v1/live/{code}/vote", json={"choice": "x"})
    assert (closed.status_code, closed.json()["detail"]["error"]) == (409, "poll-closed")
    poll = teacher.get(f"/api/v1/live/{code}").json()["poll"]
    assert (poll["seconds_left"], poll["closed"], poll["counts"]) == (0, True, [1, 0])
    # The reveal still comes when the teacher wants it.
    assert teacher.post(f"/api/v1/live/{code}/reveal", headers=key).json()["poll"]["revealed"]


def test_the_rooms_poll_results_download_as_csv(client: TestClient) -> None:
    code, key = start(client)
    client.post(f"/api/v1/live/{code}/state", json={"step": 4}, headers=key)
    client.post(f"/api/v1/live/{code}/poll", headers=key)
    students = [TestClient(client.app) for _ in range(3)]
    for student, choice in zip(students, ("x", "x", "0"), strict=True):
        student.get(f"/live/{code}")
        student.post(f"/api/v1/live/{code}/vote", json={"choice": choice})
    client.post(f"/api/v1/live/{code}/reveal", headers=key)
    client.post(f"/api/v1/live/{code}/state", json={"step": 6}, headers=key)
    client.post(f"/api/v1/live/{code}/poll", headers=key)  # the second poll, still open
    assert students[0].get(f"/api/v1/live/{code}/poll.csv").status_code == 403
    answer = client.get(f"/api/v1/live/{code}/poll.csv", headers=key)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert f"cowlab-{code}-polls.csv" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    first = {row["choice"]: row for row in rows if row["poll"] == "1"}
    assert {c: (r["votes"], r["correct"]) for c, r in first.items()} == {
        "0": ("1", "no"),
        "x": ("2", "yes"),
    }
    assert {r["command"] for r in first.values()} == {"C read a"}
    assert {(r["step"], r["policy"], r["answered"]) for r in first.values()} == {("4", "5.7", "3")}
    second = [row for row in rows if row["poll"] == "2"]
    assert second and {(r["step"], r["revealed"], r["correct"]) for r in second} == {
        ("6", "no", "")
    }


def test_room_creation_refuses_another_sites_page(client: TestClient) -> None:
    link = {"link": LINK}
    foreign = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    for path, body in (("/api/v1/live", {"json": link}), ("/live", {"data": link})):
        refused = client.post(path, headers=foreign, follow_redirects=False, **body)  # type: ignore[arg-type]
        assert refused.status_code == 403, path
    only_origin = client.post("/api/v1/live", json=link, headers={"Origin": "https://evil.example"})
    assert only_origin.json()["detail"]["error"] == "cross-site"
    null = client.post("/api/v1/live", json=link, headers={"Origin": "null"})
    assert null.status_code == 403
    # This server's own page, and scripts that send no Origin, still start rooms.
    own = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/api/v1/live", json=link, headers=own).status_code == 201
    assert client.post("/live", data=link, headers=own, follow_redirects=False).status_code == 303
    assert client.post("/api/v1/live", json=link).status_code == 201
    # Behind a proxy that rewrites Host, the visitor's host comes as X-Forwarded-Host.
    proxied = {"Origin": "https://class.example.org", "X-Forwarded-Host": "class.example.org"}
    assert client.post("/api/v1/live", json=link, headers=proxied).status_code == 201


def test_a_few_addresses_cannot_take_every_room_and_a_new_teacher_still_gets_one() -> None:
    app, broker = live_app(max_rooms=20, max_rooms_per_client=8)
    taken = 0
    for n in range(3):  # three addresses, as many rooms as each may take
        attacker = TestClient(app, client=(f"198.51.100.{n}", 40000))
        while attacker.post("/api/v1/live", json={"link": LINK}).status_code == 201:
            taken += 1
    # 8 + 7 until the last quarter (5 rooms), kept for addresses holding none: the third
    # address takes a first room from it, and so does a teacher.
    assert taken == 16
    teacher = TestClient(app, client=("203.0.113.50", 40000))
    assert teacher.post("/api/v1/live", json={"link": LINK}).status_code == 201
    refused = teacher.post("/api/v1/live", json={"link": LINK})
    assert refused.json()["detail"]["error"] == "rooms-per-client"
    assert len(broker.rooms) == 17


def test_wrong_codes_from_one_client_are_refused_after_a_burst(client: TestClient) -> None:
    code, _ = start(client)
    guesser = TestClient(client.app, client=("198.51.100.9", 40000))
    statuses = [guesser.get("/api/v1/live/AAAAAA").status_code for _ in range(60)]
    assert set(statuses) == {404}  # a hall's typos fit in the burst
    limited = guesser.get("/api/v1/live/AAAAAA")
    assert (limited.status_code, limited.json()["detail"]["error"]) == (429, "too-many-codes")
    assert "retry-after" in limited.headers
    # Guessing right no longer helps this client, and another client is not affected.
    assert guesser.get(f"/api/v1/live/{code}").status_code == 429
    assert guesser.get(f"/live?code={code}", follow_redirects=False).status_code == 429
    assert client.get(f"/api/v1/live/{code}").status_code == 200


def test_a_hall_behind_one_address_joins_with_a_few_typos() -> None:
    app, broker = live_app(max_students=600)
    teacher = TestClient(app)
    code, _ = start(teacher)
    hall = TestClient(app, client=("192.0.2.1", 40000))
    for n in range(600):
        typed = code if n % 20 else "QQQQQQ"  # one student in twenty mistypes first
        if typed != code:
            assert hall.get(f"/live?code={typed}").status_code == 404
        assert hall.get(f"/live/{code}").status_code == 200
    assert len(broker.joined[code]) == 1  # one cookie jar: the same student id each time


def test_join_redirects_are_paths(client: TestClient) -> None:
    code, _ = start(client)
    joined = client.get(f"/live?code={code.lower()}", follow_redirects=False)
    assert joined.headers["location"] == f"/live/{code}"
    slashed = client.get("/live/", follow_redirects=False)
    assert slashed.status_code in (307, 308)
    assert slashed.headers["location"] == "/live"


def test_a_lesson_link_with_a_step_past_its_end_is_refused_whole(client: TestClient) -> None:
    code, key = start(client)
    past = make_link("/", LESSON, step=99)
    answer = client.post(f"/api/v1/live/{code}/state", json={"link": past}, headers=key)
    assert (answer.status_code, answer.json()["detail"]["error"]) == (400, "step")
    assert client.get(f"/api/v1/live/{code}").json()["step"] == 2
