"""`cowlab serve`: the web visualizer under uvicorn.

The CLI (`app.cli.main`) owns the argument parser; it calls `register(subparsers)` to add this
subcommand, so the web server's options live next to the web code.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import webbrowser

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the ``cowlab`` command line; its handler is ``args.func``."""
    parser = subparsers.add_parser(
        "serve",
        help="run the web visualizer",
        description=(
            "Serve the cowlab visualizer. The server keeps no state (the link holds the "
            "scenario), so --workers N simply runs N identical processes: use it for a whole "
            "class on one machine."
        ),
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})"
    )
    parser.add_argument("--workers", type=_positive, default=1, help="worker processes (default 1)")
    parser.add_argument("--open", action="store_true", help="open the page in a web browser")
    parser.add_argument(
        "--broker",
        metavar="redis://HOST:PORT/DB",
        help="share live sessions between workers (and hosts) through Redis; without it live "
        "rooms live in the one worker's memory, and --workers N refuses them",
    )
    parser.add_argument(
        "--live-seats",
        type=_positive,
        metavar="N",
        help="students one live room admits at once (default 500)",
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="the address students use (behind a reverse proxy): live join links and QR codes",
    )
    probe = parser.add_mutually_exclusive_group()
    probe.add_argument(
        "--allow-probe",
        action="store_true",
        help=(
            "let visitors run scenarios on this machine's kernel (always allowed when listening "
            "on loopback only); they must address the server by a --probe-host name"
        ),
    )
    probe.add_argument(
        "--no-probe",
        action="store_true",
        help="never let visitors run scenarios on this machine's kernel, even on loopback "
        "(use it behind a reverse proxy)",
    )
    parser.add_argument(
        "--probe-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help=(
            "a name visitors use for this server that may run the probe, besides "
            "127.0.0.1/localhost/[::1] (repeatable; other Host names are refused, which stops "
            "DNS rebinding)"
        ),
    )
    parser.set_defaults(func=serve)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def url_for(host: str, port: int) -> str:
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def serve(args: argparse.Namespace) -> int:
    import uvicorn  # imported here: `cowlab run` should not pay for the web stack

    from app.live import serve as live_serve
    from app.probe import gate, reaper

    url = url_for(args.host, args.port)
    live_note = live_serve.prepare(args.broker, args.workers, args.public_url, args.live_seats)
    if live_note.startswith("error:"):
        print(f"cowlab serve: {live_note[6:].strip()}", file=sys.stderr)
        return 2
    probe = gate.settings_for(
        args.host,
        args.port,
        allow_probe=args.allow_probe,
        no_probe=args.no_probe,
        extra_hosts=tuple(args.probe_host),
    )
    # Set before uvicorn starts: every worker process inherits the environment, and its
    # `create_app` reads the switch (and the shared token secret) from there into app.state.
    os.environ.update(probe.to_environ())
    print(f"cowlab is serving on {url}  (Ctrl+C stops it)", flush=True)
    if probe.enabled:
        names = ", ".join(sorted(probe.hosts))
        print(
            f"  the probe (scenarios on this machine's kernel) runs for pages of {names}, "
            "not through a proxy",
            flush=True,
        )
        if args.host in ("0.0.0.0", "::") and not args.probe_host:
            print("  (add --probe-host NAME for each name visitors use for this machine)")
    print(f"  {live_note}", flush=True)
    if probe.enabled and args.workers > 1:
        # The supervisor reaps the probe processes of a worker killed mid-probe.
        reaper.start()
    if args.open:
        # After a short delay, so the browser's first request finds the socket listening.
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(
        "app.http.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        proxy_headers=True,
    )
    return 0
