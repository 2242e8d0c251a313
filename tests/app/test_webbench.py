"""The throughput machinery of `cowlab bench` against a real uvicorn worker (a smoke test: the
figures themselves are benchmarks, not tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from app.webbench import (
    STAGE,
    STATIC_FILE,
    STATIC_PATH,
    _connections,
    _hammer,
    bench_server,
    step_paths,
)

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


def test_timed_phases_answer_the_constant_body_and_the_file(bench_worker: int) -> None:
    for path in (STATIC_PATH, STATIC_FILE):
        rate, mean = asyncio.run(_hammer(bench_worker, [[path]] * 2, {}, 0.3))
        assert rate > 10
        assert mean == BODY_BYTES


def test_connections_deal_every_step_to_every_connection_from_another_start() -> None:
    paths = [str(i) for i in range(10)]
    dealt = _connections(paths, 3)
    assert [sorted(own) for own in dealt] == [paths] * 3
    assert [own[0] for own in dealt] == ["0", "3", "6"]
