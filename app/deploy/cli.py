"""`cowlab deploy nginx`: write the nginx configuration for a public class server.

    cowlab deploy nginx [--server-name NAME] [--listen ADDR]… [--upstream HOST:PORT|unix:PATH]…
                        [-o FILE]

The output is a whole nginx.conf for Debian's nginx (docs/deploy.md says where it goes and why
each figure is what it is). The workers are `cowlab serve --workers N` on 127.0.0.1:8000 by
default; several ``--upstream`` name several servers, between which nginx fails over.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.deploy.nginx import ConfigError, NginxSettings, render


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``deploy`` (with its one target, ``nginx``) to the ``cowlab`` command line."""
    deploy = subparsers.add_parser(
        "deploy",
        help="write the configuration of a reverse proxy for a public server",
        description="Write the configuration that puts cowlab behind a reverse proxy.",
    )
    targets = deploy.add_subparsers(dest="target", required=True, metavar="TARGET")
    defaults = NginxSettings()
    nginx = targets.add_parser(
        "nginx",
        help="a complete nginx.conf for Debian's nginx in front of `cowlab serve`",
        description=(
            "Print a complete nginx.conf that serves cowlab to a class: timeouts for slow "
            "clients, cowlab's size limits, unbuffered live event streams, no per-address "
            "connection limit (a lecture hall shares one address). Run the workers with "
            "`cowlab serve --workers N --no-probe` on 127.0.0.1."
        ),
    )
    nginx.add_argument(
        "--server-name",
        default=defaults.server_name,
        help="the host name(s) of the server, as nginx's server_name (default: any)",
    )
    nginx.add_argument(
        "--listen",
        action="append",
        metavar="ADDR",
        help="an nginx listen address, repeatable (default: 80 and [::]:80)",
    )
    nginx.add_argument(
        "--upstream",
        action="append",
        metavar="HOST:PORT",
        help="a cowlab server on loopback or unix:PATH, repeatable (default: 127.0.0.1:8000)",
    )
    nginx.add_argument(
        "--user", default=defaults.user, help=f"nginx's worker user (default {defaults.user})"
    )
    nginx.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    nginx.set_defaults(func=cmd_nginx)


def cmd_nginx(args: argparse.Namespace) -> int:
    try:
        settings = NginxSettings(
            upstreams=tuple(args.upstream or NginxSettings.upstreams),
            listen=tuple(args.listen or NginxSettings.listen),
            server_name=args.server_name,
            user=args.user,
        )
    except ConfigError as err:
        return refuse(str(err))
    text = render(settings)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as err:
        return refuse(f"cannot write {args.output}: {err.strerror or err}")
    return 0


def refuse(message: str) -> int:
    """One line on stderr and exit status 2, as `app.cli.main` does for every bad input."""
    sys.stderr.write(f"cowlab deploy nginx: {message}\n")
    return 2
