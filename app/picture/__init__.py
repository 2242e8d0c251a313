"""The diagram of one step: geometry computed in Python (`scene`), drawn as SVG (`svg`).

May import the engine's state and events only: nothing of the web, the views or the CLI.
"""
