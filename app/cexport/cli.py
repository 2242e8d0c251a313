"""`cowlab export c FILE|-`: the scenario as a C program that runs it on any kernel.

    cowlab export c FILE|- [--preset NAME]

Prints one C11 file (DESIGN.md §12) on standard output. Exit status 0; 2 for bad input (a syntax
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
        help="write a scenario as a C program that runs it on a real kernel",
        description=(
            "Write a scenario as one self-contained C11 program (glibc and the kernel's UAPI "
            "headers only). Build it with `cc -O2 -Wall -Werror`, run it on any kernel: it "
            "prints what each step observed, TAP lines against the era of the running kernel, "
            "and every era it behaves like."
        ),
    )
    parser.add_argument("format", choices=["c"], help="the output format: c")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE", help="scenario text; - reads stdin")
    source.add_argument("--preset", metavar="NAME", help="a preset (see `cowlab presets`)")
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
