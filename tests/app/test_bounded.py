"""Bounded answers: the JSON's states as asked, events capped per step, a size limit that
answers 413, heavy requests in a thread under a deadline that stops when the client goes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from app.bench.engine import scale_scenario
from app.http import heavy
from app.http.heavy import offload, scenario_chars
from app.views.links import encode_scenario, make_link
from app.views.runs import Budget, Stopped, check_budget, replay, run
from engine.policies import POLICIES
from engine.presets import PRESETS
from engine.syntax import format_scenario, parse
from engine.trace import (
    MAX_STEP_EVENTS,
    OutputTooLarge,
    answer_to_json,
    state_to_json,
    trace_to_json,
    traces_json_bytes,
)
from engine.trace import replay as engine_replay

FULL = "P mmap " + " ".join(f"g{i}" for i in range(256))
WRITTEN = FULL + "".join(f"\nP write g{i} v" for i in range(256))  # a fork copies every PTE
# Every kind of change a step makes: new and exiting processes, unmapped pages, freed frames,
# references taken and released, swap slots, a file's page cache.
CHURN = """\
file F data
P mmap a b c
P write a x
P write b y
P mmap f file=F
P read f
P fork C
C write a z
P vmsplice b as pipe
P swapout c
P write c w
P swapout c
C read c
C munmap b
pipe read
P pin a rw as pin1
pin1 release
C exit
P munmap a
"""


def _apply(state: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The state after ``changes``, rebuilt as a script would: by keys, from the JSON alone."""
    procs = {p["name"]: p for p in state["processes"]}
    for name in changes["exited"]:
        del procs[name]
    for changed in changes["processes"]:
        old = procs.get(changed["name"], {"pages": []})
        pages = {page["page"]: page for page in old["pages"]}
        for page in changed["unmapped"]:
            del pages[page]
        pages.update((page["page"], page) for page in changed["pages"])
        entry = {k: v for k, v in changed.items() if k != "unmapped"}
        procs[changed["name"]] = {**entry, "pages": list(pages.values())}

    def table(name: str, key: str, removed: str) -> list[dict[str, Any]]:
        rows = {row[key]: row for row in state[name]}
        for gone in changes[removed]:
            del rows[gone]
        rows.update((row[key], row) for row in changes[name])
        return list(rows.values())

    return {
        "processes": list(procs.values()),
        "frames": sorted(table("frames", "pfn", "freed"), key=lambda f: f["pfn"]),
        "references": table("references", "name", "released"),
        "swap": sorted(table("swap", "slot", "swap_freed"), key=lambda s: s["slot"]),
        "files": [*{f["name"]: f for f in [*state["files"], *changes["files"]]}.values()],
    }


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal states, whatever the order of processes' pages and of references."""

    def norm(s: dict[str, Any]) -> str:
        procs = sorted(
            ({**p, "pages": sorted(p["pages"], key=lambda g: g["page"])} for p in s["processes"]),
            key=lambda p: p["name"],
        )
        refs = sorted(s["references"], key=lambda r: r["name"])
        return json.dumps({**s, "processes": procs, "references": refs}, sort_keys=True)

    return norm(a) == norm(b)


@pytest.mark.parametrize("text", [CHURN, *(p.text for p in PRESETS.values())])
def test_changes_applied_in_order_rebuild_every_state(text: str) -> None:
    for policy in ("5.7", "6.2"):
        trace = engine_replay(text, policy)
        steps = answer_to_json(trace, "changes")["steps"]
        state: dict[str, Any] = state_to_json(trace.steps[0].state)
        for step, json_step in zip(trace.steps[1:], steps, strict=True):
            state = _apply(state, json_step["changes"])
            assert _same(state, state_to_json(step.state)), step.index


def test_changes_hold_only_what_changed() -> None:
    trace = engine_replay(FULL + "\nP write g7 x", "6.2")
    changes = answer_to_json(trace, "changes")["steps"][1]["changes"]
    assert [p["name"] for p in changes["processes"]] == ["P"]
    assert [g["page"] for g in changes["processes"][0]["pages"]] == ["g7"]
    assert len(changes["frames"]) == 1 and changes["freed"] == []


def test_states_are_given_only_for_the_steps_asked_for() -> None:
    trace = engine_replay(PRESETS["cve-2020-29374"].text, "5.7")
    last = len(trace.steps) - 1
    with_state = {
        states: [s["index"] for s in answer_to_json(trace, states)["steps"] if "state" in s]
        for states in ("none", "last", "changes", (2, 5))
    }
    assert with_state == {"none": [], "last": [last], "changes": [], (2, 5): [2, 5]}
    full = trace_to_json(trace)["steps"]
    answer = answer_to_json(trace, (2, 5))["steps"]
    assert answer[1]["state"] == full[1]["state"] and answer[4]["state"] == full[4]["state"]
    for ours, whole in zip(answer, full, strict=True):  # the fields stable for scripts
        for key in ("index", "command", "observed", "events"):
            assert ours[key] == whole[key]


def test_a_fork_and_an_exit_of_a_full_process_list_a_bounded_number_of_events() -> None:
    trace = engine_replay(WRITTEN + "\nP fork C\nC exit", "6.2")
    fork, exit_ = answer_to_json(trace, "none")["steps"][-2:]
    for step, engine_step in zip((fork, exit_), trace.steps[-2:], strict=True):
        assert len(engine_step.events) > 256  # one per page: the engine tells them all
        assert len(step["events"]) == MAX_STEP_EVENTS
        assert step["events_omitted"] == len(engine_step.events) - MAX_STEP_EVENTS


def test_an_answer_over_its_limit_stops_and_names_the_limit() -> None:
    trace = engine_replay(WRITTEN + "\nP fork C\nC exit\nP fork C", "6.2")
    small = len(traces_json_bytes([trace], "changes", limit=10**9))
    with pytest.raises(OutputTooLarge, match=f"{small - 1:,} bytes"):
        traces_json_bytes([trace], "changes", limit=small - 1)
    assert json.loads(traces_json_bytes([trace], "changes", limit=small)) == answer_to_json(
        trace, "changes"
    )


def test_the_api_at_every_limit_answers_a_bounded_body(client: TestClient) -> None:
    # 1,000 commands, 64 processes of 256 pages: a full state per step was gigabytes.
    text = format_scenario(scale_scenario(1000, 64, 256), "\n")
    r = client.post("/api/v1/simulate", json={"scenario": text})
    assert r.status_code == 200
    assert len(r.content) < 20e6
    document = r.json()
    assert document["states"] == "last"
    assert [k for k, s in enumerate(document["steps"], 1) if "state" in s] == [1000]


def test_the_api_refuses_states_it_cannot_give(client: TestClient) -> None:
    post = {"scenario": "P mmap a\nP write a x"}
    r = client.post("/api/v1/simulate", json={**post, "states": [3]})
    assert r.status_code == 400 and r.json()["detail"]["error"] == "states"
    r = client.post("/api/v1/simulate", json={**post, "states": [1, 2] * 5})
    assert r.status_code == 400 and "at most 8" in r.json()["detail"]["message"]
    assert client.post("/api/v1/simulate", json={**post, "states": "all"}).status_code == 422


def test_the_cli_prints_the_apis_bytes(client: TestClient, tmp_path: Path) -> None:
    text = PRESETS["cve-2020-29374"].text
    path = tmp_path / "s.txt"
    path.write_text(text)
    for states, cli_states in (("changes", "changes"), ([1, 3], "1,3"), ("last", None)):
        r = client.post("/api/v1/simulate", json={"scenario": text, "states": states})
        command = [sys.executable, "-m", "app.cli", "run", str(path), "--json"]
        command += ["--states", cli_states] if cli_states else []
        out = subprocess.run(command, capture_output=True, check=True).stdout
        assert out == r.content + b"\n"


def test_the_apps_replay_equals_the_engines() -> None:
    for preset in PRESETS.values():
        scenario = parse(preset.text)
        for policy in POLICIES:
            ours, theirs = replay(scenario, policy), engine_replay(scenario, policy)
            assert ours == theirs


def test_a_replay_stops_at_its_deadline_between_commands() -> None:
    scenario = parse(WRITTEN + "\nP fork C\nC exit" * 200)
    budget = Budget(seconds=0.05, deadline=time.monotonic() + 0.05)
    calls = 0

    def counting() -> None:
        nonlocal calls
        calls += 1
        budget.check()

    import app.views.runs as runs

    original = runs.check_budget
    runs.check_budget = counting
    try:
        start = time.monotonic()
        with pytest.raises(Stopped, match="0.05 s"):
            replay(scenario, "6.2")
    finally:
        runs.check_budget = original
    assert time.monotonic() - start < 2
    assert 1 < calls < len(scenario.commands)


def test_work_stops_when_the_client_disconnects() -> None:
    """The client leaves 0.1 s into a job that would run 30 s: the job sees it and stops."""
    checks: list[float] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.1)
        return {"type": "http.disconnect"}

    def work() -> str:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            checks.append(time.monotonic())
            check_budget()
            time.sleep(0.01)
        return "finished"

    start = time.monotonic()
    with pytest.raises(Stopped) as stopped:
        asyncio.run(offload(receive, work))
    assert stopped.value.gone
    assert time.monotonic() - start < 5
    assert threading.active_count() < 50


def forget_everything(client: TestClient) -> None:
    """Empty every memo the app owns: the next request replays (and so meets its deadline)."""
    for memo in client.app.state.memos:  # type: ignore[attr-defined]
        memo.clear()


def test_a_slow_request_is_answered_503_not_500(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heavy, "HEAVY_SECONDS", 0.0)
    forget_everything(client)
    text = format_scenario(scale_scenario(200, 8, 64), "\n")
    r = client.post("/api/v1/simulate", json={"scenario": text})
    assert r.status_code == 503 and r.json()["detail"]["error"] == "time"
    r = client.get(make_link("/", text, policy="6.2"))
    assert r.status_code == 503 and "longer than cowlab spends" in r.text
    assert r.headers["x-frame-options"] == "DENY"


def test_a_small_z_link_that_expands_is_offloaded(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offload rule measures the decompressed scenario (it measured the link's text)."""
    text = "P mmap a b c;P write a x" + ";P fork C;C exit" * 300
    s = encode_scenario(text)
    assert len(s) < heavy.OFFLOAD_CHARS < len(text) == scenario_chars(s)
    monkeypatch.setattr(heavy, "HEAVY_SECONDS", 0.0)
    forget_everything(client)
    # Only the offloaded path has a deadline: a 503 shows it left the event loop.
    r = client.get("/?" + f"v=1&policy=6.2&s={s}")
    assert r.status_code == 503


def test_compare_refuses_a_scenario_over_its_limit_with_413(client: TestClient) -> None:
    from app.http.routes.pages import COMPARE_MAX_WEIGHT

    text = format_scenario(scale_scenario(600, 32, 64), ";")
    assert run(text, "6.2").weight > COMPARE_MAX_WEIGHT
    r = client.get(make_link("/compare", text))
    assert r.status_code == 413
    assert f"{COMPARE_MAX_WEIGHT:,}" in r.text and "compare limit" in r.text
    # One era is not a comparison: the same scenario under one era is served.
    assert client.get(make_link("/compare", text) + "&policies=6.2").status_code == 200


def test_the_openapi_schema_says_which_states_an_answer_holds(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    states = schema["SimulateRequest"]["properties"]["states"]
    assert states["default"] == "last"
    for word in ("`last`", "`none`", "`changes`", "413"):
        assert word in states["description"]
    step = schema["StepOut"]["properties"]
    assert {"index", "command", "observed", "events", "events_omitted", "state", "changes"} <= set(
        step
    )
