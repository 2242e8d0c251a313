"""Real code: one self-contained C11 program per scenario (DESIGN.md §12).

`generate.program` writes the program: `runtime.c` (loaded by `runtime`) with the scenario's steps
(`steps`) and every era's expectations in between; `steps.step_code` gives the system calls one
step makes, from the same code, for the page's "real code" view; `ctext` escapes text into C.
Nothing here compiles or runs anything. `cli` adds `cowlab export c`.

May import `app.probe` (the probe's vocabulary of observations and its skip rules, which the
program follows), `app.views` (share links), `app.cli` (the CLI's input handling) and the
engine (tests/app/test_layering.py checks).
"""

from app.cexport.generate import ExportRefused, program
from app.cexport.steps import StepCode, step_code

__all__ = ["ExportRefused", "StepCode", "program", "step_code"]
