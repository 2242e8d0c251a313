"""`cowlab serve`: the subcommand the CLI adds through `app.cli.serve.register`."""

from __future__ import annotations

import argparse

import pytest

from app.cli import serve as serve_cli


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


@pytest.fixture
def no_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, object]]]:
    """uvicorn.run recorded instead of run; the probe's environment and reaper left untouched."""
    import uvicorn

    from app.probe import gate, reaper

    calls: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    monkeypatch.setattr(reaper, "start", lambda: calls.append(("reaper", {})))
    for name in (gate.ENV_FLAG, gate.ENV_HOSTS, gate.ENV_SECRET):
        monkeypatch.setenv(name, "")
    return calls


def probe_on() -> bool:
    from app.probe.gate import ProbeSettings

    return ProbeSettings.from_environ().enabled


def test_serve_prints_the_url_and_runs_uvicorn(
    no_uvicorn: list[tuple[str, dict[str, object]]], capsys: pytest.CaptureFixture[str]
) -> None:
    args = parser().parse_args(["serve", "--port", "8123", "--workers", "3"])
    assert args.func(args) == 0
    assert "http://127.0.0.1:8123/" in capsys.readouterr().out
    # Several workers on loopback probe: the supervisor reaps what a killed worker leaves.
    assert [name for name, _ in no_uvicorn] == ["reaper", "app.http.main:create_app"]
    kwargs = no_uvicorn[1][1]
    assert kwargs["workers"] == 3 and kwargs["port"] == 8123 and kwargs["factory"] is True


def test_allow_probe_is_passed_to_the_probe_switch(
    no_uvicorn: list[tuple[str, dict[str, object]]], capsys: pytest.CaptureFixture[str]
) -> None:
    args = parser().parse_args(["serve", "--host", "0.0.0.0"])
    args.func(args)
    assert not probe_on()  # a public address needs --allow-probe
    args = parser().parse_args(
        ["serve", "--host", "0.0.0.0", "--allow-probe", "--probe-host", "lab.example"]
    )
    args.func(args)
    assert probe_on()
    out = capsys.readouterr().out
    assert "kernel" in out and "lab.example:8000" in out


def test_the_probe_host_list_and_secret_reach_the_workers(
    no_uvicorn: list[tuple[str, dict[str, object]]],
) -> None:
    from app.probe.gate import ProbeSettings

    args = parser().parse_args(["serve", "--port", "8123", "--probe-host", "pc7.lab:80"])
    args.func(args)
    settings = ProbeSettings.from_environ()
    assert settings.hosts == {"127.0.0.1:8123", "localhost:8123", "[::1]:8123", "pc7.lab:80"}
    assert len(settings.secret) == 32
    args.func(args)  # each start draws a new secret: tokens of an old server do not carry over
    assert ProbeSettings.from_environ().secret != settings.secret


def test_no_probe_turns_the_probe_off_even_on_loopback(
    no_uvicorn: list[tuple[str, dict[str, object]]], capsys: pytest.CaptureFixture[str]
) -> None:
    args = parser().parse_args(["serve"])
    args.func(args)
    assert probe_on()  # loopback: on by default
    capsys.readouterr()
    args = parser().parse_args(["serve", "--no-probe", "--workers", "2"])
    args.func(args)
    assert not probe_on()
    assert "kernel" not in capsys.readouterr().out
    assert "reaper" not in [name for name, _ in no_uvicorn]
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--no-probe", "--allow-probe"])
