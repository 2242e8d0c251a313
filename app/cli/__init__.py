"""The `cowlab` command (`main`), its `serve` subcommand, and the narration of traces for a
terminal (`narrate`).

`main` builds the parser; the subcommands of other packages (`app.bench`, `app.probe`,
`app.deploy`) register themselves through `main.SUBCOMMAND_MODULES`. May import the engine and
any `app` package it starts (the web app only by uvicorn's import string).
"""
