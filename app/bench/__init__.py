"""`cowlab bench`: the figures of DESIGN.md §7 (`engine`, `web`) and the load test (`load`).

May import every other `app` package and the engine; nothing imports it but the CLI.
"""
