"""Input limits of DESIGN.md §7, enforced at every entry (parser, links, API, CLI)."""

MAX_COMMANDS = 1000
MAX_PROCS = 64
MAX_PAGES_PER_PROC = 256
MAX_REFS = 64
MAX_LINK_SCENARIO_BYTES = 16 * 1024  # the `s=` parameter as sent
MAX_DECOMPRESSED_BYTES = 64 * 1024  # scenario text after `z:` decompression (and any text input)
