"""`cowlab deploy nginx`: one command hands out a configuration nginx accepts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from app.cli.main import main
from app.deploy.nginx import ConfigError, NginxSettings, render


def test_the_command_writes_the_configuration_for_the_given_workers(tmp_path: Path) -> None:
    out = tmp_path / "nginx.conf"
    args = ["deploy", "nginx", "--server-name", "class.example.org", "-o", str(out)]
    args += ["--upstream", "127.0.0.1:8001", "--upstream", "unix:/run/cowlab.sock"]
    assert main(args) == 0
    expected = NginxSettings(
        upstreams=("127.0.0.1:8001", "unix:/run/cowlab.sock"), server_name="class.example.org"
    )
    assert out.read_text() == render(expected)


@pytest.mark.skipif(os.getuid() != 0, reason="nginx -t opens Debian's log files, root's")
def test_nginx_accepts_the_default_configuration(nginx_binary: str, tmp_path: Path) -> None:
    out = tmp_path / "nginx.conf"
    assert main(["deploy", "nginx", "-o", str(out)]) == 0
    checked = subprocess.run(
        [nginx_binary, "-t", "-c", str(out), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(
    "upstream",
    ["0.0.0.0:8000", "10.0.0.5:8000", "example.org:80", "127.0.0.1", "unix:", "::1:8000"],
)
def test_a_worker_reachable_without_the_proxy_is_refused(
    upstream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deploy", "nginx", "--upstream", upstream]) == 2
    assert capsys.readouterr().err.startswith("cowlab deploy nginx: ")
    with pytest.raises(ConfigError):
        NginxSettings(upstreams=(upstream,))


@pytest.mark.parametrize("upstream", ["127.0.0.1:8000", "[::1]:8000", "localhost:9000"])
def test_loopback_workers_are_accepted(upstream: str) -> None:
    assert f"server {upstream} " in render(NginxSettings(upstreams=(upstream,)))


def test_an_event_stream_read_timeout_near_the_heartbeat_is_refused() -> None:
    with pytest.raises(ConfigError, match="heartbeat"):
        NginxSettings(sse_read_timeout_s=20)
