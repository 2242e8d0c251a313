"""`cowlab export html FILE|-|--preset NAME`: the scenario or lesson as one self-contained HTML
file that steps offline (issue 23), the same file `/export.html?<link>` downloads.

Printed on standard output (`> lesson.html`). ``--policy`` picks the era (default: the
lesson's `#policy`, else the newest), ``--step`` the step it opens at (default 0). Exit status 2
for bad input, as every cowlab command: a syntax error with its line and column, an unknown
era, a scenario over the file's step limit.
"""

from __future__ import annotations

import argparse

from app.cli.main import EXIT_OK, InputError, describe_scenario_error, write_in_pieces
from app.http.routes.offline import TooLarge, offline_page, standalone_request
from app.views.lessons import TooCostly
from app.views.runs import lesson_policy, run
from engine.policies import UnknownPolicy, get_policy
from engine.syntax import ScenarioError


def write_offline(args: argparse.Namespace, source: str, text: str) -> int:
    policy = args.policy or lesson_policy(text) or get_policy("latest").id
    request = standalone_request({"policy": policy})
    try:
        r = run(text, policy, request.app.state.runs)
    except ScenarioError as err:
        raise InputError(describe_scenario_error(source, text, err)) from None
    except UnknownPolicy as err:
        raise InputError(f"--policy: {err}") from None
    step = args.step if args.step is not None else 0
    if not 0 <= step <= r.last:
        raise InputError(f"--step: {step} is not a step of {source} (0 to {r.last})")
    try:
        page = offline_page(request, r, policy, step)
    except (TooLarge, TooCostly) as err:
        raise InputError(f"{source}: {err}") from None
    write_in_pieces(page.encode("utf-8"))
    return EXIT_OK
