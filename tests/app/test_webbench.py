"""The machinery of `cowlab bench`: in-process requests that start truly cold, and a real
uvicorn worker (a smoke test: the figures themselves are benchmarks, not tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from app.bench.web import (
    STAGE,
    STATIC_PATH,
    _connections,
    _hammer,
    bench_server,
    call,
    class_paths,
    empty_memos,
    step_paths,
)
from app.http.main import create_app

# A smoke test of `cowlab bench`: scripts/test runs it in the bench lane.
pytestmark = pytest.mark.bench

BODY_BYTES = 4321


@pytest.fixture(scope="module")
def bench_worker() -> Iterator[int]:
    with bench_server(BODY_BYTES) as port:
        yield port


def test_a_warm_up_walk_gets_a_stage_fragment_for_every_step(bench_worker: int) -> None:
    steps = step_paths("6.2")[:24]
    chunks = [steps[i::4] for i in range(4)]
    rate, mean = asyncio.run(_hammer(bench_worker, chunks, STAGE, None))
    assert rate > 0
    assert mean > 1000  # a stage fragment, not an error page (that would raise anyway)


def test_timed_phases_answer_the_constant_body(bench_worker: int) -> None:
    rate, mean = asyncio.run(_hammer(bench_worker, [[STATIC_PATH]] * 2, {}, 0.3))
    # Some requests were answered within the phase; how many depends on the machine's load
    # (a CI run beside other jobs made 3 a second), which is the benchmark's to judge.
    assert rate > 0
    assert mean == BODY_BYTES


def test_a_cold_request_finds_every_memo_of_the_app_empty() -> None:
    app = create_app()
    link = step_paths("5.7")[3]
    status, first = asyncio.run(call(app, link, STAGE))
    assert status == 200
    assert len(app.state.runs) == 1 and len(app.state.pages.entries) == 1
    empty_memos(app)
    assert len(app.state.runs) == 0 and len(app.state.pages.entries) == 0
    assert asyncio.run(call(app, link, STAGE)) == (200, first)


def test_the_class_steps_through_every_step_of_one_lesson() -> None:
    paths = class_paths()
    assert len(paths) >= 9
    assert [p.rsplit("&step=", 1)[1] for p in paths] == [str(k) for k in range(len(paths))]
    assert len({p.rsplit("&step=", 1)[0] for p in paths}) == 1


def test_connections_deal_every_step_to_every_connection_from_another_start() -> None:
    paths = [str(i) for i in range(10)]
    dealt = _connections(paths, 3)
    assert [sorted(own) for own in dealt] == [paths] * 3
    assert [own[0] for own in dealt] == ["0", "3", "6"]
