"""`cowlab serve` and live sessions: one broker for all workers, or no live sessions at all."""

from __future__ import annotations

import argparse

import pytest
from starlette.testclient import TestClient

from app.cli import serve as serve_cli
from app.http.main import create_app
from app.live import serve as live_serve
from app.live.broker import ENV_BROKER, ENV_PUBLIC_URL, ENV_WORKERS, REFUSED_WORKERS
from tests.app.live_support import LINK


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` sets the workers' environment in this process: restored after each test. The
    probe's reaper is left unstarted: it would make this test process the subreaper of every
    orphan (and reap them) for the rest of the session, which the kernel tests watch for."""
    from app.probe import gate, reaper

    for name in (ENV_BROKER, ENV_WORKERS, ENV_PUBLIC_URL, gate.ENV_FLAG, gate.ENV_HOSTS):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv(gate.ENV_SECRET, "")
    monkeypatch.setattr(reaper, "start", lambda: None)


def serve_args(*extra: str) -> argparse.Namespace:
    top = argparse.ArgumentParser(prog="cowlab")
    serve_cli.register(top.add_subparsers(dest="command", required=True))
    return top.parse_args(["serve", *extra])


def test_several_workers_without_a_broker_refuse_live_sessions_clearly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    assert serve_cli.serve(serve_args("--workers", "3")) == 0
    assert "live sessions are OFF" in capsys.readouterr().out
    # What each of the three workers then does:
    client = TestClient(create_app())
    answer = client.post("/api/v1/live", json={"link": LINK})
    assert answer.status_code == 503
    assert answer.json()["detail"] == {"error": "live-off", "message": REFUSED_WORKERS}
    page = client.post("/live", data={"link": LINK})
    assert page.status_code == 503
    assert "--broker redis://" in page.text


def test_one_worker_keeps_rooms_in_memory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    assert serve_cli.serve(serve_args()) == 0
    assert "rooms in this worker's memory" in capsys.readouterr().out
    client = TestClient(create_app())
    assert client.post("/api/v1/live", json={"link": LINK}).status_code == 201


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379/0", "takes a redis:// URL"),
        ("redis://127.0.0.1:1/0", "does not answer"),
    ],
)
def test_a_broker_that_cannot_be_used_stops_serve_before_it_starts(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    started: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(args))
    assert serve_cli.serve(serve_args("--workers", "2", "--broker", url)) == 2
    assert message in capsys.readouterr().err
    assert started == []


def test_join_links_use_the_public_url_behind_a_proxy() -> None:
    live_serve.prepare(None, 1, "https://cow.example.edu/")
    client = TestClient(create_app())
    answer = client.post("/api/v1/live", json={"link": LINK}).json()
    assert answer["join_url"] == f"https://cow.example.edu/live/{answer['code']}"
