"""`cowlab export c FILE|-`: the scenario as a C program that runs it on any kernel.

    cowlab export c FILE|- [--preset NAME]
    cowlab export html FILE|- [--preset NAME] [--policy ID] [--step K]

Prints one C11 file (DESIGN.md §12) on standard output; `html` prints the file that steps
offline instead (`app.cli.export_html`). Exit status 0; 2 for bad input (a syntax
or limit error with its line and column, an unreadable file, an unknown preset), as every
cowlab command.
"""

from __future__ import annotations

import argparse

from app.cexport.generate import ExportRefused, program


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export`` to the ``cowlab`` command line; its handler is ``args.func``."""
    parser = subparsers.add_parser(
        "export",
        help="write a scenario as a C program (c), or as one HTML file that steps offline (html)",
        description=(
            "Write a scenario as one self-contained C11 program (glibc and the kernel's UAPI "
            "headers only). Build it with `cc -O2 -Wall -Werror`, run it on any kernel: it "
            "prints what each step observed, TAP lines against the era of the running kernel, "
            "and every era it behaves like. `html`: the scenario or lesson as one self-contained "
            "HTML file that steps from disk with no network."
        ),
    )
    parser.add_argument("format", choices=["c", "html"], help="the output format: c or html")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE", help="scenario text; - reads stdin")
    source.add_argument("--preset", metavar="NAME", help="a preset (see `cowlab presets`)")
    parser.add_argument("--policy", metavar="ID", help="html: the era (default: #policy, latest)")
    parser.add_argument("--step", type=int, metavar="K", help="html: the step it opens at (0)")
    parser.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    # app.cli.main owns input handling (InputError -> one message on stderr, exit 2); imported
    # here because app.cli.main imports this module while it builds its parser.
    from app.cli.main import (
        EXIT_OK,
        InputError,
        describe_scenario_error,
        preset_text,
        read_file,
        read_stdin,
        write_in_pieces,
    )
    from engine.syntax import ScenarioError, parse

    if args.preset is not None:
        source, text = f"preset {args.preset}", preset_text(args.preset)
    else:
        source, text = ("<stdin>", read_stdin()) if args.file == "-" else read_file(args.file)
    if args.format == "html":
        from app.cli.export_html import write_offline

        return write_offline(args, source, text)
    try:
        scenario = parse(text)
    except ScenarioError as err:
        raise InputError(describe_scenario_error(source, text, err)) from None
    try:
        text = program(scenario)
    except ExportRefused as err:
        raise InputError(f"{source}: {err}") from None
    write_in_pieces(text.encode("utf-8"))
    return EXIT_OK
