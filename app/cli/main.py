"""The `cowlab` command: replay scenarios in a terminal, narrated or as JSON (DESIGN.md §4).

    cowlab run FILE|- [--policy ID|all] [--json]
    cowlab run --preset NAME [--policy ID|all] [--json]
    cowlab presets [--json]

A scenario with a `#goal` line also gets the goal's result, evaluated under the policies its
terms name whatever ``--policy`` says: after the narration, and as ``"goal"`` beside ``steps``
(or ``runs``) in JSON (DESIGN.md §8).

Exit status: 0 after a run (whether or not a goal is met); 2 for anything wrong with the input
— a syntax or limit error, an unknown policy or preset, a file that cannot be read — with one
message on stderr that says where and what was expected, never a traceback. A scenario the
kernel would punish is not an input error: the run succeeds and its trace says what the kernel
did.

Adding a subcommand is one function: a module listed in `SUBCOMMAND_MODULES` defines
``register(subparsers)``, which adds its parser and sets ``func`` (``Namespace -> int``, the
exit status) with ``set_defaults``, as in the argparse documentation, so the parts of cowlab
that add commands (`serve`, `bench`, `probe`, `deploy`) live next to their own code.
"""

from __future__ import annotations

import argparse
import codecs
import difflib
import importlib
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from app.cli import narrate
from engine import limits
from engine.lesson import GoalResult, evaluate_goal, goal_to_json
from engine.policies import POLICIES, UnknownPolicy, get_policy
from engine.presets import PRESETS
from engine.syntax import ScenarioError, parse
from engine.trace import (
    DEFAULT_STATES,
    OutputTooLarge,
    StatesChoice,
    check_states,
    replay,
    traces_json_bytes,
)

EXIT_OK = 0
EXIT_INPUT = 2  # the status argparse itself uses for a bad command line
EXIT_BROKEN_PIPE = 1

# Modules that add their own subcommand (see the module docstring).
SUBCOMMAND_MODULES = (
    "app.cli.serve",
    "app.bench.command",
    "app.probe.cli",
    "app.deploy.cli",
    "app.cli.lab",
    "app.cexport.cli",
)

Handler = Callable[[argparse.Namespace], int]
Subparsers = argparse._SubParsersAction  # argparse has no public name for this type


class InputError(Exception):
    """Bad input for a command: printed as one line (plus context) on stderr, exit status 2."""


# ------------------------------------------------------------------------------------------
# Parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cowlab",
        description="Replay Linux copy-on-write scenarios under each kernel policy era.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_run(subparsers)
    register_presets(subparsers)
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def register_run(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    policies = ", ".join([*POLICIES, "latest"])
    run = subparsers.add_parser(
        "run",
        help="replay a scenario and narrate the trace",
        description="Replay a scenario (a file, - for stdin, or a preset) under one policy or all.",
    )
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE", help="scenario text; - reads stdin")
    source.add_argument("--preset", metavar="NAME", help="a preset (see `cowlab presets`)")
    run.add_argument(
        "--policy",
        default="latest",
        metavar="ID",
        help=f"a policy id or `all` (default: latest); one of: {policies}",
    )
    run.add_argument("--json", action="store_true", help="print the JSON of DESIGN.md §4")
    run.add_argument(
        "--states",
        type=states_choice,
        default=DEFAULT_STATES,
        metavar="WHICH",
        help="with --json, which states to print: last (default), none, changes, or step "
        "numbers such as 3,7 (as the API's `states`)",
    )
    run.set_defaults(func=cmd_run)


def states_choice(text: str) -> StatesChoice:
    if text in ("none", "last", "changes"):
        return text  # type: ignore[return-value]  # narrowed by the test above
    try:
        return tuple(int(k) for k in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: none, last, changes or comma-separated step numbers"
        ) from None


def register_presets(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    presets = subparsers.add_parser(
        "presets",
        help="list the presets with their verdicts under every policy",
        description="List every preset and the verdict kinds it gets under every policy.",
    )
    presets.add_argument("--json", action="store_true", help="print JSON instead of a table")
    presets.set_defaults(func=cmd_presets)


# ------------------------------------------------------------------------------------------
# run


def write_in_pieces(answer: bytes) -> None:
    """``answer`` on standard output in pipe-sized pieces, so a reader that leaves (`| head`)
    is noticed at the next piece; as text where standard output has no byte stream (a caller
    that captured it in a `StringIO`)."""
    sys.stdout.flush()
    binary = getattr(sys.stdout, "buffer", None)
    if binary is None:
        sys.stdout.write(answer.decode())
        return
    for start in range(0, len(answer), 65536):
        binary.write(answer[start : start + 65536])
        binary.flush()


def cmd_run(args: argparse.Namespace) -> int:
    if args.preset is not None:
        source, text = f"preset {args.preset}", preset_text(args.preset)
    else:
        source, text = ("<stdin>", read_stdin()) if args.file == "-" else read_file(args.file)
    policy_ids = policies_for(args.policy)
    try:
        scenario = parse(text)
    except ScenarioError as err:
        raise InputError(describe_scenario_error(source, text, err)) from None
    traces = [replay(scenario, policy_id) for policy_id in policy_ids]
    # A `#goal` is evaluated under the policies its terms name, whatever --policy says
    # (DESIGN.md §8); the traces already replayed are reused.
    goal = evaluate_goal(scenario, {t.policy.id: t for t in traces})
    if args.json:
        # The API's serialiser and size limit: the same request gives the same bytes.
        try:
            check_states(args.states, len(scenario.commands))
            answer = traces_json_bytes(
                traces,
                args.states,
                many=args.policy == "all",
                goal=None if goal is None else goal_to_json(goal),
            )
        except (ValueError, OutputTooLarge) as err:
            raise InputError(str(err)) from None
        write_in_pieces(answer + b"\n")
        return EXIT_OK
    out = sys.stdout
    for i, trace in enumerate(traces):
        if i:
            out.write("\n" + "=" * 72 + "\n\n")
        out.write(narrate.narrate(trace))
    if args.policy == "all":
        out.write("\n" + "=" * 72 + "\n\nsummary: what each read observed, by policy\n\n")
        out.write(narrate.summary(traces))
    if goal is not None:
        out.write("\n" + goal_text(goal))
    return EXIT_OK


def goal_text(goal: GoalResult) -> str:
    """``goal: met`` (or ``not met``), then one line per term."""
    lines = [f"goal: {'met' if goal.met else 'not met'}"]
    lines += [f"  {'yes' if t.met else 'no ':3}  {t.term}" for t in goal.terms]
    return "\n".join(lines) + "\n"


def policies_for(policy: str) -> list[str]:
    if policy == "all":
        return list(POLICIES)
    try:
        return [get_policy(policy).id]
    except UnknownPolicy as err:
        raise InputError(f"{err} (or all)") from None


def preset_text(name: str) -> str:
    preset = PRESETS.get(name)
    if preset is None:
        close = difflib.get_close_matches(name, PRESETS, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else "; see `cowlab presets`"
        raise InputError(f"unknown preset {name!r}{hint}")
    return preset.text


def read_file(path: str) -> tuple[str, str]:
    try:
        with open(path, "rb") as f:
            return path, decode(path, f.read(_READ_CAP))
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None


def read_stdin() -> str:
    return decode("<stdin>", sys.stdin.buffer.read(_READ_CAP))


# Read no more than the limit plus a few bytes: enough for the parser to report the limit at
# the right place, without swallowing an endless stream (`cowlab run /dev/zero`).
_READ_CAP = limits.MAX_DECOMPRESSED_BYTES + 4


def decode(source: str, data: bytes) -> str:
    # An incremental decoder keeps back a character cut in half by the read cap instead of
    # calling it invalid; `parse` then sees more than the limit and says so. `utf-8-sig` drops
    # the byte-order mark Windows editors put first, which would otherwise be a syntax error
    # at line 1, column 1 that no one can see.
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        return decoder.decode(data, final=len(data) < _READ_CAP)
    except UnicodeDecodeError as err:
        raise InputError(f"{source}: not UTF-8 text (byte {err.start + 1})") from None


def describe_scenario_error(source: str, text: str, err: ScenarioError) -> str:
    """The parser's message, then the offending line with a caret under the column."""
    lines = text.split("\n")
    message = f"{source}: {err}"
    if not 1 <= err.line <= len(lines):
        return message
    line = lines[err.line - 1].rstrip("\r")
    column = err.column - 1
    # Show at most ~100 characters around the column of a long line.
    start = max(0, min(column - 50, len(line) - 100))
    excerpt = line[start : start + 100]
    # One printable character per source character keeps the caret aligned and the terminal
    # safe from control characters.
    shown = "".join(ch if ch.isprintable() else " " if ch == "\t" else "?" for ch in excerpt)
    caret = " " * (column - start) + "^"
    return f"{message}\n    {shown}\n    {caret}"


# ------------------------------------------------------------------------------------------
# presets


def cmd_presets(args: argparse.Namespace) -> int:
    policy_ids = list(POLICIES)
    rows = []
    for preset in PRESETS.values():
        scenario = parse(preset.text)
        kinds = {p: replay(scenario, p).verdict_kinds() for p in policy_ids}
        rows.append((preset, kinds))
    if args.json:
        write_json(
            {
                "policies": policy_ids,
                "presets": [
                    {
                        "name": preset.name,
                        "title": preset.title,
                        "story": preset.story,
                        "source": preset.source,
                        "text": preset.text,
                        "backing": preset.backing,
                        "verdicts": {p: list(k) for p, k in kinds.items()},
                    }
                    for preset, kinds in rows
                ],
            }
        )
        return EXIT_OK
    sys.stdout.write(
        narrate.presets_table(policy_ids, [(p.name, p.title, kinds) for p, kinds in rows])
    )
    return EXIT_OK


# ------------------------------------------------------------------------------------------
# Entry point


def write_json(document: object) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _robust(stream: TextIO) -> None:
    # Engine narration uses → and —; a non-UTF-8 terminal should get escapes, not a crash.
    if isinstance(stream, io.TextIOWrapper):
        stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    _robust(sys.stdout)
    args = build_parser().parse_args(argv)
    handler: Handler = args.func
    try:
        return handler(args)
    except InputError as err:
        sys.stderr.write(f"cowlab: {err}\n")
        return EXIT_INPUT
    except BrokenPipeError:
        # `cowlab run … | head`: the reader left. Exit quietly with 1, as the Python docs
        # recommend, pointing stdout at devnull so the interpreter's final flush cannot raise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    raise SystemExit(main())
