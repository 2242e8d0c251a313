"""Fixtures for the deployment tests: a real cowlab worker, a real nginx, many sockets.

Every process is started here, in a session of its own, and stopped by its id in teardown.
Sockets go to 127.0.0.1 only, and their number is bounded by the tests.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.deploy import run
from app.deploy.nginx import NginxSettings

ROOT = Path(__file__).resolve().parents[2]
# The usual `ulimit -n`: what a worker started from a login shell or a plain unit gets.
USUAL_NOFILE = 1024
SLOW_SOCKETS = 1100
# The sockets this process opens at once, with room for the test's own requests.
NEEDED_NOFILE = SLOW_SOCKETS + 700


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    try:
        return run.binary()
    except run.NginxMissing as err:
        pytest.skip(f"{err}; scripts/test installs it")


@pytest.fixture(scope="session", autouse=True)
def enough_descriptors() -> None:
    """Raise this process's soft RLIMIT_NOFILE: the slow sockets are the test's, not a leak."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = NEEDED_NOFILE + 256
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard descriptor limit ({hard}) is below the {wanted} these tests need")
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def wait_answering(process: subprocess.Popen[bytes], port: int, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.sendall(b"GET /static/favicon.svg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            s.settimeout(2)
            if s.recv(12).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer on port {port} within {limit_s:.0f} s")


@contextlib.contextmanager
def started(command: list[str], port: int, nofile: int | None = None) -> Iterator[int]:
    """Run ``command`` (a server on 127.0.0.1:``port``) until the block ends; yields its pid."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if nofile is not None:
            # Soft and hard: `cowlab serve` raises its soft limit to the hard one (issue 20),
            # so a worker limited to ``nofile`` needs a hard limit of ``nofile``.
            resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (nofile, nofile))
        wait_answering(process, port)
        yield process.pid
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


@pytest.fixture
def worker_port() -> Iterator[int]:
    """A real `cowlab serve` worker on loopback, under the usual descriptor limit (as hard
    limit: a unit or shell that allows no more)."""
    port = run.free_port()
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-probe"]
    with started(command, port, nofile=USUAL_NOFILE):
        yield port


@pytest.fixture
def proxy_port(nginx_binary: str, worker_port: int, tmp_path: Path) -> Iterator[int]:
    """nginx with the shipped configuration in front of ``worker_port``."""
    settings = NginxSettings(upstreams=(f"127.0.0.1:{worker_port}",))
    with run.running(settings, tmp_path / "nginx") as nginx:
        yield nginx.port
