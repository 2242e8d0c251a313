"""`cowlab serve`: the subcommand the CLI adds through `app.serve_cli.register`."""

from __future__ import annotations

import argparse

import pytest

from app import serve_cli


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="cowlab")
    serve_cli.register(top.add_subparsers(dest="command", required=True))
    return top


def test_defaults_are_loopback_8000_one_worker() -> None:
    args = parser().parse_args(["serve"])
    assert (args.host, args.port, args.workers, args.open) == ("127.0.0.1", 8000, 1, False)
    assert args.func is serve_cli.serve


def test_options_for_a_classroom() -> None:
    args = parser().parse_args(
        ["serve", "--host", "0.0.0.0", "--port", "9000", "--workers", "4", "--open"]
    )
    assert (args.host, args.port, args.workers, args.open) == ("0.0.0.0", 9000, 4, True)


def test_zero_workers_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--workers", "0"])
    assert "at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000/"),
        ("0.0.0.0", "http://127.0.0.1:8000/"),
        ("::1", "http://[::1]:8000/"),
        ("lab.example", "http://lab.example:8000/"),
    ],
)
def test_printed_url_is_one_a_browser_can_open(host: str, url: str) -> None:
    assert serve_cli.url_for(host, 8000) == url


def test_serve_prints_the_url_and_runs_uvicorn(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[str, dict[str, object]]] = []

    def fake_run(app: str, **kwargs: object) -> None:
        calls.append((app, kwargs))

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", fake_run)
    args = parser().parse_args(["serve", "--port", "8123", "--workers", "3"])
    assert args.func(args) == 0
    assert "http://127.0.0.1:8123/" in capsys.readouterr().out
    ((app, kwargs),) = calls
    assert app == "app.main:app"
    assert kwargs["workers"] == 3 and kwargs["port"] == 8123


def test_allow_probe_is_passed_to_the_probe_switch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    from app.probe import web as probe_web

    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: None)
    monkeypatch.delenv(probe_web.ENV_FLAG, raising=False)
    args = parser().parse_args(["serve", "--host", "0.0.0.0"])
    args.func(args)
    assert not probe_web.enabled()  # a public address needs --allow-probe
    args = parser().parse_args(["serve", "--host", "0.0.0.0", "--allow-probe"])
    args.func(args)
    assert probe_web.enabled()
    assert "kernel" in capsys.readouterr().out
    monkeypatch.delenv(probe_web.ENV_FLAG)


def test_no_probe_turns_the_probe_off_even_on_loopback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    from app.probe import web as probe_web

    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: None)
    monkeypatch.delenv(probe_web.ENV_FLAG, raising=False)
    args = parser().parse_args(["serve"])
    args.func(args)
    assert probe_web.enabled()  # loopback: on by default
    capsys.readouterr()
    args = parser().parse_args(["serve", "--no-probe"])
    args.func(args)
    assert not probe_web.enabled()
    assert "kernel" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--no-probe", "--allow-probe"])
    monkeypatch.delenv(probe_web.ENV_FLAG)
