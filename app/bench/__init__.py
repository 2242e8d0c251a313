"""`cowlab bench`: the figures of DESIGN.md §7, measured rather than asserted in unit tests.

- `command` — the subcommand: runs the figures, judges them against the budgets, prints them,
  or (``--load``) runs the load test;
- `engine` — replay figures, in this process;
- `web` — step and class figures of the web app, in process and against a real uvicorn;
- `vm` — (``--vm``) Debian's 6.1 under QEMU TCG: boot and every-preset figures;
- `load` — the load test: many simulated students against a server of its own on 127.0.0.1,
  optionally behind nginx (docs/deploy.md). Its client, httpx, is the `bench` extra.

May import every other `app` package and the engine; nothing imports it but the CLI.
"""
