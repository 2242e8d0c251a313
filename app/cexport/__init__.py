"""Real code: one self-contained C11 program per scenario (DESIGN.md §12).

`generate.program` writes the program; `generate.step_code` gives the system calls one step makes,
from the same generator, for the page's "real code" view. Neither compiles nor runs anything.
"""

from app.cexport.generate import ExportRefused, StepCode, program, step_code

__all__ = ["ExportRefused", "StepCode", "program", "step_code"]
