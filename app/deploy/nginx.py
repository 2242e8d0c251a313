"""The nginx configuration for a public cowlab server, rendered from `nginx.conf.in`.

Its figures come from cowlab's own limits, so the proxy and the app cannot disagree about
what a valid request is: the request line fits the longest link the app reads
(`app.http.guard.MAX_QUERY_BYTES`), the body limit is the app's (`MAX_BODY_BYTES`), and nginx's own
error pages carry the app's security headers (`app.http.security.DENY_HEADERS`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from importlib import resources

from app.http.guard import MAX_BODY_BYTES, MAX_QUERY_BYTES
from app.http.security import DENY_HEADERS

SEND_BUFFER_KB = 256
HEARTBEAT_S = 15  # the live sessions' heartbeat (issue 15): an event stream is quiet this long
# A request line holds the path and the method besides the query: room for both, in KB.
HEADER_BUFFER_KB = -(-(MAX_QUERY_BYTES + 2048) // 1024)

_TOKEN = re.compile(r"@([a-z_]+)@")


class ConfigError(ValueError):
    """A setting nginx would accept but that breaks the deployment (e.g. a public upstream)."""


@dataclass(frozen=True)
class NginxSettings:
    """Everything that differs between one nginx and another; the rest is fixed by cowlab."""

    upstreams: tuple[str, ...] = ("127.0.0.1:8000",)
    listen: tuple[str, ...] = ("80", "[::]:80")
    server_name: str = "_"
    # Debian's places; the tests and the load test point them into a directory of their own.
    user: str | None = "www-data"
    pid: str = "/run/nginx.pid"
    error_log: str = "/var/log/nginx/error.log"
    access_log: str = "/var/log/nginx/access.log"
    temp: str = "/var/lib/nginx"
    header_timeout_s: int = 10
    body_timeout_s: int = 10
    send_timeout_s: int = 30
    keepalive_timeout_s: int = 15
    read_timeout_s: int = 30
    sse_read_timeout_s: int = 4 * HEARTBEAT_S
    worker_connections: int = 8192

    def __post_init__(self) -> None:
        if not self.upstreams:
            raise ConfigError("at least one upstream worker address is needed")
        for upstream in self.upstreams:
            check_upstream(upstream)
        if not self.listen:
            raise ConfigError("at least one listen address is needed")
        if self.sse_read_timeout_s <= 2 * HEARTBEAT_S:
            raise ConfigError(
                f"event streams need a read timeout well above their {HEARTBEAT_S} s heartbeat"
            )


def check_upstream(upstream: str) -> None:
    """Workers listen on loopback or a unix socket only: nginx is the one public door."""
    if upstream.startswith("unix:"):
        if len(upstream) == len("unix:"):
            raise ConfigError("unix: needs a socket path")
        return
    host, sep, port = upstream.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"upstream {upstream!r}: expected HOST:PORT or unix:PATH")
    bracketed = host.startswith("[") and host.endswith("]")
    if ":" in host and not bracketed:
        raise ConfigError(f"upstream {upstream!r}: an IPv6 address goes in brackets, [::1]:PORT")
    host = host.removeprefix("[").removesuffix("]")
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"upstream {upstream!r}: the workers must listen on loopback (127.0.0.1, ::1) or a "
            "unix socket, so that nothing reaches them without passing through nginx"
        )


def template() -> str:
    return resources.files("app.deploy").joinpath("nginx.conf.in").read_text(encoding="utf-8")


def render(settings: NginxSettings) -> str:
    """The whole nginx.conf (main, events and http contexts) for ``settings``."""
    indent = " " * 8
    security = "\n".join(
        f'{indent}    add_header {name.decode()} "{value.decode()}" always;'
        for name, value in [*DENY_HEADERS, (b"cache-control", b"no-store")]
    )
    values = {
        "user": f"user {settings.user};" if settings.user else "",
        # Two descriptors per connection, plus files and logs.
        "rlimit_nofile": str(2 * settings.worker_connections + 1024),
        "worker_connections": str(settings.worker_connections),
        "pid": settings.pid,
        "error_log": settings.error_log,
        "access_log": settings.access_log,
        "temp": settings.temp,
        "header_timeout": str(settings.header_timeout_s),
        "body_timeout": str(settings.body_timeout_s),
        "send_timeout": str(settings.send_timeout_s),
        "keepalive_timeout": str(settings.keepalive_timeout_s),
        "read_timeout": str(settings.read_timeout_s),
        "sse_read_timeout": str(settings.sse_read_timeout_s),
        "header_buffer": f"{HEADER_BUFFER_KB}k",
        "max_body": str(MAX_BODY_BYTES),
        "upstream_servers": "\n".join(
            f"{indent}server {u} max_fails=1 fail_timeout=5s;" for u in settings.upstreams
        ),
        # A burst of a whole class connecting at once must not overflow the accept queue. A
        # client that stops reading (a phone asleep, a script holding live streams open) pins
        # at most SEND_BUFFER_KB of kernel memory (Linux grows it to 4 MB by default) until
        # send_timeout lets it go; nginx's own buffers pass pages on meanwhile.
        "listen": "\n".join(
            f"{indent}listen {a} backlog=4096 sndbuf={SEND_BUFFER_KB}k;" for a in settings.listen
        ),
        "server_name": settings.server_name,
        "security_headers": security,
    }

    def fill(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return _TOKEN.sub(fill, template())
