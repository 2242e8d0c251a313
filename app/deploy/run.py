"""An nginx of one's own, in a directory of one's own: for the tests and the load test.

Everything nginx writes (configuration, pid file, logs, temporary files) lives under one
directory, it runs in the foreground (``daemon off``) as a child of this process in a session
of its own, and it is stopped by that child's id — never by name — when the block ends, however
it ends.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from app.deploy.nginx import NginxSettings, render

START_ALLOWANCE_S = 10.0
STOP_ALLOWANCE_S = 10.0


class NginxMissing(RuntimeError):
    """No nginx binary: `scripts/test` installs Debian's."""


@dataclass(frozen=True)
class Nginx:
    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise NginxMissing("nginx is not installed (Debian: apt-get install nginx)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def local_settings(directory: Path, port: int, settings: NginxSettings) -> NginxSettings:
    """``settings`` with every path under ``directory``, listening on 127.0.0.1:``port``."""
    # The workers of an nginx started as root switch to `user`: the current user keeps the
    # temporary directory (made by this process) writable for them.
    user = pwd.getpwuid(os.getuid()).pw_name if os.getuid() == 0 else None
    return replace(
        settings,
        listen=(f"127.0.0.1:{port}",),
        server_name="_",
        user=user,
        pid=str(directory / "nginx.pid"),
        error_log=str(directory / "error.log"),
        access_log="off",
        temp=str(directory / "temp"),
    )


@contextlib.contextmanager
def running(settings: NginxSettings, directory: Path, port: int | None = None) -> Iterator[Nginx]:
    """nginx with ``settings`` (paths moved under ``directory``), serving 127.0.0.1:``port``."""
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "temp").mkdir(exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(render(local_settings(directory, port, settings)), encoding="utf-8")
    command = [binary(), "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]
    checked = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx refused the configuration:\n{checked.stderr}")
    process = subprocess.Popen(
        [*command, "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_listening(process, port)
        yield Nginx(process, port, directory)
    finally:
        stop(process)


def wait_listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_ALLOWANCE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"nginx exited with status {process.returncode}:\n{err}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on port {port} within {START_ALLOWANCE_S:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (nginx's fast shutdown) to the master's session, then SIGKILL if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_ALLOWANCE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    if process.stderr is not None:
        process.stderr.close()
