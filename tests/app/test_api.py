"""POST /api/v1/simulate: the JSON of DESIGN.md §4, and clear 4xx for bad input."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from schemathesis.checks import positive_data_acceptance
from starlette.testclient import TestClient

from app.http.main import app
from engine.limits import MAX_DECOMPRESSED_BYTES
from engine.presets import PRESETS
from engine.trace import answer_to_json, replay


def test_simulate_answers_the_engines_json(client: TestClient) -> None:
    text = PRESETS["cve-2020-29374"].text
    r = client.post("/api/v1/simulate", json={"scenario": text, "policy": "5.7"})
    assert r.status_code == 200
    assert r.json() == answer_to_json(replay(text, "5.7"))
    assert r.json()["verdicts"][0]["kind"] == "leak"


def test_policy_defaults_to_latest(client: TestClient) -> None:
    r = client.post("/api/v1/simulate", json={"scenario": "P mmap a"})
    assert r.json()["policy"] == "6.15"


def test_syntax_error_says_where(client: TestClient) -> None:
    r = client.post("/api/v1/simulate", json={"scenario": "P mmap a\nP frok C"})
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail["error"] == "syntax"
    assert (detail["line"], detail["column"]) == (2, 3)
    assert detail["found"] == "frok"
    assert "fork" in detail["expected"]


def test_unknown_policy_lists_the_known_ones(client: TestClient) -> None:
    r = client.post("/api/v1/simulate", json={"scenario": "P mmap a", "policy": "2.6"})
    assert r.status_code == 400
    assert r.json()["detail"]["error"] == "unknown-policy"
    assert "latest" in r.json()["detail"]["policies"]


def test_scenario_over_the_limits_is_refused(client: TestClient) -> None:
    text = "P mmap a\n" + "P read a\n" * 1000
    r = client.post("/api/v1/simulate", json={"scenario": text})
    assert r.status_code == 413
    assert r.json()["detail"]["error"] == "limit"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"scenario": 3},
        {"scenario": "P mmap a", "extra": 1},
        {"scenario": "x" * (MAX_DECOMPRESSED_BYTES + 1)},
    ],
    ids=["missing", "wrong-type", "unknown-field", "too-long"],
)
def test_malformed_bodies_are_422(client: TestClient, body: dict[str, object]) -> None:
    assert client.post("/api/v1/simulate", json=body).status_code == 422


schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
def test_every_route_honours_its_schema(case: schemathesis.Case[Any]) -> None:
    """Fuzzed queries and bodies: never a 5xx, and every response matches the schema.

    A schema-valid request may still be refused: the scenario language (and a link's `step`)
    cannot be expressed in JSON Schema, so "any string" is documented and the route answers a
    bad one with its documented 400 page. That check alone is left out.
    """
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def test_simulate_answers_a_goals_result_beside_steps(client: TestClient) -> None:
    text = (
        "#goal leak@5.7 !leak@5.9\nP mmap a\nP write a old\nP fork C\nC vmsplice a as pipe\n"
        "C munmap a\nP write a secret\npipe read"
    )
    r = client.post("/api/v1/simulate", json={"scenario": text, "policy": "6.2"})
    assert r.status_code == 200
    body = r.json()
    assert body["policy"] == "6.2" and len(body["steps"]) == 7
    assert body["goal"] == {
        "met": True,
        "terms": [{"term": "leak@5.7", "met": True}, {"term": "!leak@5.9", "met": True}],
    }


def test_simulate_without_a_goal_has_no_goal_key(client: TestClient) -> None:
    assert "goal" not in client.post("/api/v1/simulate", json={"scenario": "P mmap a"}).json()


def test_a_goal_that_would_replay_too_much_is_a_413_that_says_why(client: TestClient) -> None:
    # 601 commands under two more eras: 1,202 commands beyond the one asked for.
    text = "#goal ok@5.7 ok@5.9 ok@6.2\nP mmap a\n" + "P write a v\n" * 600
    r = client.post("/api/v1/simulate", json={"scenario": text, "policy": "6.2"})
    assert r.status_code == 413
    problem = r.json()["detail"]
    assert problem["error"] == "limit"
    assert "#goal" in problem["message"] and "1,202 commands" in problem["message"]
    # The same goal under the one era asked for costs nothing more.
    text = "#goal ok@6.2\nP mmap a\n" + "P write a v\n" * 600
    r = client.post("/api/v1/simulate", json={"scenario": text, "policy": "6.2"})
    assert r.status_code == 200 and r.json()["goal"]["met"] is True
