"""`cowlab lab`: the policy lab in a terminal (DESIGN.md §11).

    cowlab lab knobs [--json]   every knob, its choices, the eras' settings, refused combinations
    cowlab lab sweep [--json]   every knob combination against every preset

Custom points themselves need no command of their own: ``cowlab run --policy
custom:base=5.9,gup_read=break-cow`` replays under one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

from app.lab_store import store
from app.views.lab_answer import backing_sentences, debate_sentences, modelling_notes
from engine.policies import POLICIES
from engine.policies.knobs import KNOBS, refusals_json
from engine.sweep import run_sweep, sweep_json


def knobs_json() -> dict[str, Any]:
    return {
        "knobs": {k: [c.id for c in knob.choices] for k, knob in KNOBS.items()},
        "eras": {e.id: dict(e.knobs) for e in POLICIES.values()},
        "refused": refusals_json(),
    }


def knobs_text() -> str:
    out: list[str] = []
    for knob in KNOBS.values():
        out.append(f"{knob.id} — {knob.title}: {knob.question}")
        for choice in knob.choices:
            eras = [e.id for e in POLICIES.values() if e.knobs[knob.id] == choice.id]
            where = ", ".join(eras) if eras else "no era"
            commit = f", {choice.commit}" if choice.commit else ""
            out.append(f"  {choice.id:<26} {choice.label} ({choice.kernel}{commit}) [{where}]")
            out.append(f"  {'':<26} {choice.why}")
        out.append("")
    out.append("refused combinations:")
    for refusal in refusals_json():
        out.append(f"  {refusal['knob']}={refusal['choice']} with any of: ")
        out.append("    " + ", ".join(refusal["conflicts_with"]))  # type: ignore[arg-type]
        out.append(f"    {refusal['why']}")
    return "\n".join(out) + "\n"


def sweep_text(doc: dict[str, Any]) -> str:
    kinds = doc["kinds"]
    out = [
        f"{doc['points_total']} points ({doc['points_refused']} refused, {doc['points_run']} "
        f"run) × {len(doc['presets'])} presets, {doc['replays']} replays after reuse",
        "",
        "The answer, per backing:",
    ]
    for backing, answer in doc["summary"].items():
        out.append("")
        out.extend(
            textwrap.wrap(" ".join(backing_sentences(backing, answer)), 96, break_on_hyphens=False)
        )
    out.append("\nAugust 2020:")
    for sentence in [*debate_sentences(doc), *modelling_notes()]:
        out.extend(
            textwrap.wrap(
                sentence, 96, initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False
            )
        )
    out.append("\neras (presets giving each verdict, expected failures included):")
    for era, counts in doc["eras"].items():
        out.append(f"  {era:<18} " + "  ".join(f"{k} {counts[k]}" for k in kinds if counts[k]))
    out.append(
        f"\nclean designs (no verdict on any preset but the expected failures): "
        f"{doc['clean_points']}"
    )
    out.append("smallest change to a clean design:")
    for era, ids in doc["smallest_clean_change"].items():
        out.append(f"  {era:<18} {ids[0] if ids else '-'}")
    out.append("\nknobs that matter (groups of points where changing the knob alone changes it):")
    for kind, knobs in doc["knobs_that_matter"].items():
        out.append(f"  {kind:<15} " + ", ".join(f"{k} ({n})" for k, n in knobs.items()))
    out.append(
        f"\n{len(doc['outcomes'])} distinct outcomes; `cowlab lab sweep --json` lists each with "
        "its designs as cubes."
    )
    return "\n".join(out) + "\n"


def cmd_knobs(args: argparse.Namespace) -> int:
    if args.json:
        json.dump(knobs_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(knobs_text())
    return 0


def sweep_workers() -> int:
    """Processes for the sweep: every core, up to one per preset (DESIGN.md §7 measures it on
    two)."""
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def cmd_sweep(args: argparse.Namespace) -> int:
    sweep = run_sweep(workers=sweep_workers())
    if args.store:
        store(sweep, Path(args.store))
        return 0
    doc = sweep_json(sweep)
    if args.json:
        json.dump(doc, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    else:
        sys.stdout.write(sweep_text(doc))
    return 0


def register(subparsers: Any) -> None:
    lab = subparsers.add_parser(
        "lab",
        help="the policy lab: knobs, custom points and the sweep",
        description="Compose COW/GUP designs from the kernel's rule choices (DESIGN.md §11).",
    )
    commands = lab.add_subparsers(dest="lab_command", required=True, metavar="LAB_COMMAND")
    knobs = commands.add_parser("knobs", help="list every knob, choice and refused combination")
    knobs.add_argument("--json", action="store_true", help="print JSON")
    knobs.set_defaults(func=cmd_knobs)
    sweep = commands.add_parser("sweep", help="every knob combination against every preset")
    sweep.add_argument("--json", action="store_true", help="print JSON (reproducible)")
    sweep.add_argument(
        "--store",
        metavar="DIR",
        help="write the sweep where the web app's workers read it (app/lab_store.py), print "
        "nothing",
    )
    sweep.set_defaults(func=cmd_sweep)
