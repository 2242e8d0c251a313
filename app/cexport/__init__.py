"""Real code: one self-contained C11 program per scenario (DESIGN.md §12).

`generate.program` writes the program; `generate.step_code` gives the system calls one step makes,
from the same generator, for the page's "real code" view. Neither compiles nor runs anything.
`cli` adds `cowlab export c`.

May import `app.probe` (the probe's vocabulary of observations and its skip rules, which the
program follows), `app.views` (share links), `app.cli` (the CLI's input handling) and the
engine (tests/app/test_layering.py checks).
"""

from app.cexport.generate import ExportRefused, StepCode, program, step_code

__all__ = ["ExportRefused", "StepCode", "program", "step_code"]
