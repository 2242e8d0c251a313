"""Who may run a probe: the server's switch, then a decision for every request.

A probe forks up to 65 processes on the server and spends its CPU, so it is for the person at
the machine (a student's own laptop), or for visitors the teacher let in with ``--allow-probe``.
The server's switch says which (`settings_for`); on top of it every request must show that it
comes from a page of this server, asked for by name, directly:

- **Not through a proxy.** A request that carries ``Forwarded``, ``X-Forwarded-*``,
  ``X-Real-IP`` or ``Via`` was relayed: on a loopback server behind a reverse proxy on the same
  host, every visitor of the proxy would otherwise look like the machine's owner.
- **A Host this server answers probes for.** A page of another site whose name an attacker
  rebinds to 127.0.0.1 (DNS rebinding) is same-origin with itself, so it can read cowlab's pages;
  its requests still carry the attacker's name in ``Host``. A loopback server accepts only
  ``127.0.0.1:PORT``, ``localhost:PORT`` and ``[::1]:PORT`` unless told more (``--probe-host``).
- **Same origin.** Browsers say where a request comes from: ``Origin`` must be this server's
  own, and ``Sec-Fetch-Site`` (when sent) ``same-origin`` — not ``same-site``, since another
  program's page on ``localhost:OTHERPORT`` is same-site with cowlab's.
- **A token from the form** (the HTML route only), for a browser that sends neither header. It
  is an HMAC of the Host under a secret that `cowlab serve` draws once and hands every worker,
  so any worker checks it without state; a page of this server carries it, and another site
  cannot read a page of this server. The same token for every visitor keeps pages cacheable,
  and costs nothing here: the probe holds no per-visitor authority, only the network position
  of the browser, and whoever can read a page from that position could press the button.

The JSON API takes no token: a cross-site page cannot send ``application/json`` without a CORS
preflight, which cowlab never grants, and the other checks apply to it as to the form.

Every refusal is a `Refusal`, whose text says what was wrong; the routes answer it with a 403.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

ENV_FLAG = "COWLAB_PROBE"  # "1": probing is switched on for this server
ENV_HOSTS = "COWLAB_PROBE_HOSTS"  # comma-separated Host values that may probe
ENV_SECRET = "COWLAB_PROBE_SECRET"  # hex; keys the form token, the same in every worker
TOKEN_FIELD = "probe_token"
# Headers a reverse proxy adds to what it relays (RFC 7239, the de-facto X- ones, RFC 9110's Via).
PROXY_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "via",
)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

OFF = (
    "Running scenarios on this server's kernel is switched off (the server does not listen on "
    "loopback only and was not started with --allow-probe, or was started with --no-probe)."
)


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """The server's switch, as every worker sees it (`create_app` puts it in ``app.state``)."""

    enabled: bool = False
    hosts: frozenset[str] = frozenset()  # lower-case Host header values, with the port
    secret: bytes = b""

    def to_environ(self) -> dict[str, str]:
        """The environment variables that carry these settings to uvicorn's worker processes."""
        return {
            ENV_FLAG: "1" if self.enabled else "0",
            ENV_HOSTS: ",".join(sorted(self.hosts)),
            ENV_SECRET: self.secret.hex(),
        }

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> ProbeSettings:
        """The settings `cowlab serve` handed this worker; off when it handed none."""
        if environ.get(ENV_FLAG) != "1":
            return cls()
        try:
            secret = bytes.fromhex(environ.get(ENV_SECRET, ""))
        except ValueError:
            secret = b""
        hosts = frozenset(h.strip().lower() for h in environ.get(ENV_HOSTS, "").split(",") if h)
        if not secret or not hosts:
            # A half-configured server (started by hand, not by `cowlab serve`) does not probe.
            return cls()
        return cls(True, hosts, secret)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def probe_allowed(host: str, allow_probe: bool) -> bool:
    """Probing is switched on when the server listens on loopback only, or was told explicitly."""
    return allow_probe or is_loopback(host)


def host_names(host: str, port: int) -> frozenset[str]:
    """The Host header values a browser sends for ``host:port``: the loopback names for a
    loopback or wildcard address, else the address itself (also without the port when it is 80,
    which browsers leave out)."""
    names = {_bracketed(host)}
    if is_loopback(host) or host in ("0.0.0.0", "::"):
        names = (names - {"0.0.0.0", "[::]"}) | set(LOOPBACK_NAMES)
    with_port = {f"{name}:{port}" for name in names}
    return frozenset(with_port | names if port == 80 else with_port)


def settings_for(
    host: str,
    port: int,
    *,
    allow_probe: bool = False,
    no_probe: bool = False,
    extra_hosts: tuple[str, ...] = (),
) -> ProbeSettings:
    """The switch `cowlab serve` sets: on for a loopback address or ``--allow-probe``, never
    with ``--no-probe``; the Host allow-list is the listening address's names plus
    ``--probe-host`` names (``name`` or ``name:port``; a bare name gets the server's port)."""
    if no_probe or not probe_allowed(host, allow_probe):
        return ProbeSettings()
    extra = {_host_value(name, port) for name in extra_hosts}
    return ProbeSettings(True, host_names(host, port) | extra, secrets.token_bytes(32))


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host.lower()


def _host_value(name: str, port: int) -> str:
    """``name`` as a Host header carries it: lower case, IPv6 in brackets, with a port."""
    name = name.strip().lower()
    if name.startswith("["):
        has_port = "]:" in name
    elif name.count(":") > 1:  # a bare IPv6 address
        name, has_port = f"[{name}]", False
    else:
        has_port = ":" in name
    return name if has_port else f"{name}:{port}"


# ------------------------------------------------------------------------ per request
@dataclass(frozen=True, slots=True)
class Refusal:
    """Why this request may not probe; ``error`` is the JSON API's code for it."""

    error: str
    message: str


def form_token(settings: ProbeSettings, host: str) -> str:
    return hmac.new(settings.secret, host.lower().encode(), hashlib.sha256).hexdigest()


def page_refusal(settings: ProbeSettings, headers: Mapping[str, str]) -> Refusal | None:
    """Whether a page shown to this request may offer the probe (the button)."""
    if not settings.enabled:
        return Refusal("probe-off", OFF)
    relayed = [name for name in PROXY_HEADERS if name in headers]
    if relayed:
        return Refusal(
            "probe-proxied",
            f"This request came through a proxy ({', '.join(relayed)}): the server's kernel runs "
            "scenarios only for someone talking to cowlab directly on this machine.",
        )
    host = headers.get("host", "").lower()
    if host not in settings.hosts:
        return Refusal(
            "probe-host",
            f"This server runs scenarios on its kernel only when it is addressed as "
            f"{', '.join(sorted(settings.hosts))}, not as {host or '(no Host)'}.",
        )
    return None


def request_refusal(
    settings: ProbeSettings,
    headers: Mapping[str, str],
    scheme: str,
    token: str | None,
    *,
    needs_token: bool,
) -> Refusal | None:
    """Whether this request may run a probe now; ``headers`` with lower-case names."""
    refusal = page_refusal(settings, headers)
    if refusal is not None:
        return refusal
    host = headers["host"].lower()
    origin = headers.get("origin")
    if origin is not None and origin.lower() != f"{scheme}://{host}":
        return Refusal(
            "probe-cross-origin",
            f"This request was sent by a page of {origin}, not of this server: only cowlab's own "
            "pages may run scenarios on this server's kernel.",
        )
    site = headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return Refusal(
            "probe-cross-origin",
            f"The browser says this request came from another site (Sec-Fetch-Site: {site}): "
            "only cowlab's own pages may run scenarios on this server's kernel.",
        )
    if needs_token and not hmac.compare_digest(token or "", form_token(settings, host)):
        return Refusal(
            "probe-token",
            "The form's token is missing or out of date (the server may have been restarted): "
            "reload the page and press the button again.",
        )
    return None
