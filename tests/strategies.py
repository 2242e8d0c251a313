"""Hypothesis strategies for scenario text (DESIGN.md §2), shared by every fuzz test.

`scenarios()` draws *valid* text over the whole language: every verb and every option, names
from small pools so that they collide (processes, references and files share one namespace, so
a reference may be called `pin`, `pipe` or `P`; page names are a namespace of their own and
reuse those words too), commands after `exit`, `munmap` and `release`, on pages never mapped and
through references never taken, files never declared, comments, `;`, newlines and CRLF.
`large_scenarios()` draws text near the limits of DESIGN.md §7 (commands, processes, pages,
references) cheaply, for the occasional worst case. `invalid_scenarios()` breaks one token of a
valid text and says where, so that a test can check the syntax error names that place.

Validity is the parser's, tracked here by the same rules (`engine.syntax` module docstring):
whoever extends the language extends `_Builder` with the new verbs and options, and
`test_strategies.py` checks every drawn text parses.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from hypothesis import strategies as st

from engine import limits
from engine.syntax import auto_ref_name

T = TypeVar("T")

# Colliding pools: a name drawn for one kind may already be another kind; the builder then
# picks a name of the right kind or a fresh one, as a user would have to.
PROCESS_NAMES = ("P", "C", "D", "pin", "pipe", "F", "Proc-16_chars_ab")
REFERENCE_NAMES = ("R", "pin", "pipe", "pipe2", "gup", "io", "P", "F", "ref-16-chars_abc")
FILE_NAMES = ("F", "G", "pipe", "P")
# Page names are their own namespace: words that are process, reference, option or verb names
# elsewhere are fine pages (never `ro`, `shared` or the keyword `file`).
PAGE_NAMES = ("a", "b", "c", "P", "pin", "as", "rw", "race", "x_Y-9", "A234567890123456")
VALUES = ("v1", "v2", "0", "x.y", "A:b+c-d_e", "race", "file", "1" * 32)
# Unknown references: `X read` and `X release` with X never taken parse as reference commands
# (the engine reports "no reference X").
UNKNOWN_NAMES = ("ghost", "Q")

PROCESS_VERBS = (
    "mmap",
    "read",
    "write",
    "fork",
    "exit",
    "munmap",
    "dontneed",
    "dontfork",
    "dofork",
    "mprotect",
    "pte-map",
    "clear-softdirty",
    "swapout",
    "uffd-wp",
    "vmsplice",
    "get",
    "pin",
    "iouring",
    "forcewrite",
)
# A verb mix where swap-out and swap-in (a read or write of a swapped page) meet fork, exit and
# references: the paths where the swap cache, swap counts and exclusive bits interact.
SWAP_HEAVY = (
    *("swapout",) * 6,
    *("read", "write", "fork") * 3,
    *("exit", "munmap", "dontneed", "vmsplice", "pin", "get", "iouring", "forcewrite"),
    *("mprotect", "uffd-wp", "clear-softdirty", "mmap", "pte-map"),
)
SEPARATORS = ("\n", ";", "; ", " ; ", "\n\n", ";\n", "\r\n", "\t;\t")
COMMENTS = ("# a comment", "#", "# ; P exit", "#: note ; with a semicolon", "# naïve ☃ <b>&amp;")


class Chooser:
    """Where the builder's choices come from: hypothesis draws (shrinkable) or a seeded
    `random.Random` (cheap, for scenarios of a thousand commands)."""

    def __init__(self, pick: Callable[[Sequence[object]], object], coin: Callable[[float], bool]):
        self._pick = pick
        self._coin = coin

    def pick(self, options: Sequence[T]) -> T:
        choice: T = self._pick(options)  # type: ignore[assignment]
        return choice

    def coin(self, p: float) -> bool:
        return self._coin(p)


def _draw_chooser(draw: st.DrawFn) -> Chooser:
    return Chooser(
        lambda options: draw(st.sampled_from(options)),
        # A boolean that shrinks to False: the minimal example uses no optional word.
        lambda p: draw(st.integers(0, 99)) >= 100 - round(p * 100),
    )


def _random_chooser(rng: random.Random) -> Chooser:
    return Chooser(lambda options: rng.choice(options), lambda p: rng.random() < p)


@dataclass
class _Builder:
    """Builds one valid command at a time, tracking names as `engine.syntax._Names` does."""

    choose: Chooser
    pages_pool: Sequence[str] = PAGE_NAMES
    process_pool: Sequence[str] = PROCESS_NAMES
    verbs: Sequence[str] = PROCESS_VERBS
    kinds: dict[str, str] = field(default_factory=dict)
    pages: dict[str, set[str]] = field(default_factory=dict)
    takes: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def procs(self) -> int:
        return sum(kind == "process" for kind in self.kinds.values())

    def free(self, name: str, kind: str) -> bool:
        return self.kinds.get(name, kind) == kind

    def add(self, name: str, kind: str) -> None:
        self.kinds.setdefault(name, kind)

    def name(self, pool: Sequence[str], kind: str, *, avoid: str = "") -> str | None:
        """A name of ``kind`` from ``pool`` (known or fresh), or None if every one is taken."""
        name = self.choose.pick(pool)
        if self.free(name, kind) and name != avoid:
            return name
        usable = [n for n in pool if self.free(n, kind) and n != avoid]
        return self.choose.pick(usable) if usable else None

    def process(self, new_ok: int = 1) -> str | None:
        """A process name; a fresh one only while ``new_ok`` more processes fit the limit."""
        name = self.name(self.process_pool, "process")
        if name is not None and name not in self.kinds and self.procs + new_ok > limits.MAX_PROCS:
            known = [n for n, k in self.kinds.items() if k == "process"]
            return self.choose.pick(known) if known else None
        return name

    def page(self, proc: str) -> str:
        # Mostly a page the process mapped, sometimes any (never mapped, or unmapped since).
        mapped = sorted(self.pages.get(proc, ()))
        if mapped and self.choose.coin(0.8):
            return self.choose.pick(mapped)
        return self.choose.pick(self.pages_pool)

    def value(self) -> str:
        return self.choose.pick(VALUES)

    def command(self) -> str | None:
        """One command's text, or None when the drawn kind of command cannot be made here."""
        kind = self.choose.pick(("process",) * 8 + ("reference", "reference", "file"))
        if kind == "file":
            name = self.name(FILE_NAMES, "file")
            if name is None:
                return None
            self.add(name, "file")
            return f"file {name} {self.value()}"
        if kind == "reference":
            return self.reference_command()
        proc = self.process()
        if proc is None:
            return None
        verb = self.choose.pick(self.verbs)
        words = self.process_command(proc, verb)
        if words is None:
            return None
        self.add(proc, "process")
        return " ".join([proc, verb, *words])

    def reference_command(self) -> str | None:
        refs = sorted(n for n, k in self.kinds.items() if k == "reference")
        unknown = [n for n in UNKNOWN_NAMES if n not in self.kinds]
        if not refs or (unknown and self.choose.coin(0.1)):
            if not unknown:
                return None
            return f"{self.choose.pick(unknown)} {self.choose.pick(('read', 'release'))}"
        ref = self.choose.pick(refs)
        verb = self.choose.pick(("read", "write", "release"))
        return f"{ref} write {self.value()}" if verb == "write" else f"{ref} {verb}"

    def process_command(self, proc: str, verb: str) -> list[str] | None:
        c = self.choose
        if verb == "mmap":
            return self.mmap(proc)
        if verb in ("read", "munmap", "dontneed", "dontfork", "dofork", "swapout", "pte-map"):
            return [self.page(proc)]
        if verb == "write":
            return [self.page(proc)] + ([self.value()] if c.coin(0.5) else [])
        if verb == "fork":
            new = 1 + (proc not in self.kinds)
            child = self.process(new_ok=new)
            if child is None or not self.free(child, "process"):
                return None
            # Register the parent first: the parser counts it before the child.
            self.add(proc, "process")
            self.add(child, "process")
            self.pages[child] = set(self.pages.get(proc, ()))
            return [child]
        if verb in ("exit", "clear-softdirty"):
            return []
        if verb == "mprotect":
            return [self.page(proc), c.pick(("ro", "rw"))]
        if verb == "uffd-wp":
            return [self.page(proc), c.pick(("on", "off"))]
        if verb in ("vmsplice", "get", "pin", "iouring"):
            return self.take(proc, verb)
        # forcewrite
        return [self.page(proc), self.value()] + (["race"] if c.coin(0.3) else [])

    def mmap(self, proc: str) -> list[str] | None:
        c = self.choose
        known = self.pages.setdefault(proc, set())
        if c.coin(0.3):
            file = self.name(FILE_NAMES, "file", avoid=proc)
            if file is None:
                return None
            page = self.choose.pick(self.pages_pool)
            if page not in known and len(known) >= limits.MAX_PAGES_PER_PROC:
                return None
            flags = [f for f in ("shared", "ro") if c.coin(0.4)]
            if len(flags) == 2 and c.coin(0.5):
                flags.reverse()
            self.add(proc, "process")
            self.add(file, "file")
            known.add(page)
            return [page, f"file={file}", *flags]
        pages: list[str] = []
        for _ in range(c.pick((1, 1, 1, 2, 3))):
            page = c.pick(self.pages_pool)
            if page in pages or (page not in known and len(known) >= limits.MAX_PAGES_PER_PROC):
                continue
            pages.append(page)
            known.add(page)
        if pages and c.coin(0.3):
            # DESIGN.md §10: each page a 2 MiB huge page
            pages.append(f"backing={c.pick(('thp', 'hugetlb'))}")
        return pages or None

    def take(self, proc: str, verb: str) -> list[str] | None:
        c = self.choose
        if self.takes >= limits.MAX_REFS:
            return None
        words = [self.page(proc)]
        if verb in ("get", "pin"):
            words.append(c.pick(("ro", "rw")))
        options: list[list[str]] = []
        named: str | None = None
        if c.coin(0.6):
            named = self.name(REFERENCE_NAMES, "reference", avoid=proc)
            if named is not None:
                options.append(["as", named])
        if verb == "pin":
            options += [[w] for w in ("longterm", "fast") if c.coin(0.4)]
        if verb in ("get", "pin") and c.coin(0.3):
            options.append(["wrong-side-ok"])
        # Options come in any order; `as R` stays one unit.
        order = list(range(len(options)))
        for i in range(len(order) - 1, 0, -1):
            j = c.pick(range(i + 1))
            order[i], order[j] = order[j], order[i]
        for i in order:
            words += options[i]
        self.add(proc, "process")
        self.takes += 1
        if named is None:
            named = auto_ref_name(verb, self.kinds.keys())
        self.add(named, "reference")
        return words


def _join(c: Chooser, commands: Sequence[str]) -> str:
    """Commands with separators, blank lines and comments between them (never steps)."""
    parts: list[str] = []
    for i, command in enumerate(commands):
        if i:
            sep = c.pick(SEPARATORS)
            if c.coin(0.1):
                # A comment runs to the end of its line, hiding any `;` after it.
                sep = f" {c.pick(COMMENTS)}\n"
            parts.append(sep)
        parts.append(command)
    if commands and c.coin(0.2):
        parts.append(f"  {c.pick(COMMENTS)}")
    return "".join(parts)


def _build(c: Chooser, n: int, builder: _Builder) -> list[str]:
    commands: list[str] = []
    attempts = 0
    while len(commands) < n and attempts < 3 * n + 10:
        attempts += 1
        command = builder.command()
        if command is not None:
            commands.append(command)
    return commands


@st.composite
def scenario_commands(
    draw: st.DrawFn, max_commands: int = 30, verbs: Sequence[str] = PROCESS_VERBS
) -> list[str]:
    """The commands of a valid scenario, one canonical-looking text per command; ``verbs`` is
    the mix process commands are drawn from (a verb repeated is drawn more often)."""
    c = _draw_chooser(draw)
    n = draw(st.integers(0, max_commands))
    builder = _Builder(c, verbs=verbs)
    # Most scenarios start by mapping something, as users do; some start anywhere.
    start = []
    if draw(st.integers(0, 9)) < 8:
        proc = builder.process()
        if proc is not None:
            pages = builder.mmap(proc)
            if pages:
                builder.add(proc, "process")
                start = [" ".join([proc, "mmap", *pages])]
    return start + _build(c, n, builder)


@st.composite
def scenarios(draw: st.DrawFn, max_commands: int = 30, verbs: Sequence[str] = PROCESS_VERBS) -> str:
    """Valid scenario text over the whole language (see the module docstring)."""
    commands = draw(scenario_commands(max_commands, verbs))
    return _join(_draw_chooser(draw), commands)


@st.composite
def swap_scenarios(draw: st.DrawFn, max_commands: int = 30) -> str:
    """Swap-heavy scenarios (`SWAP_HEAVY`) on either swap device: `#swap zram` (a synchronous
    device: swap-in skips the swap cache), `#swap file`, or no line (the default, a file)."""
    device = draw(st.sampled_from(("#swap zram\n", "#swap file\n", "")))
    return device + draw(scenarios(max_commands, SWAP_HEAVY))


def random_scenario(seed: int, max_commands: int = 30, verbs: Sequence[str] = PROCESS_VERBS) -> str:
    """What `scenarios()` draws, from a seed: for surveys of the strategy's reach, long local
    hunts, and a look at typical texts (``[random_scenario(i) for i in range(5)]``)."""
    rng = random.Random(seed)
    c = _random_chooser(rng)
    return _join(c, _build(c, rng.randint(0, max_commands), _Builder(c, verbs=verbs)))


def large_scenario(seed: int, commands: int = limits.MAX_COMMANDS) -> str:
    """A valid scenario at the limits: up to 64 processes, 256 pages each, 64 references.

    Built from a seed rather than draw by draw: a thousand hypothesis draws per command would
    make each example cost seconds before the replay starts.
    """
    rng = random.Random(seed)
    c = _random_chooser(rng)
    pool = tuple(f"p{i}" for i in range(limits.MAX_PAGES_PER_PROC))
    procs = tuple(f"P{i}" for i in range(limits.MAX_PROCS + 4))
    builder = _Builder(c, pages_pool=pool, process_pool=procs)
    lines = [f"P0 mmap {' '.join(pool)}"]
    builder.add("P0", "process")
    builder.pages["P0"] = set(pool)
    # Fork early and often so that the state is as wide as the limits allow.
    for i in range(1, rng.randint(1, limits.MAX_PROCS)):
        lines.append(f"P0 fork P{i}")
        builder.add(f"P{i}", "process")
        builder.pages[f"P{i}"] = set(pool)
    lines += _build(c, commands - len(lines), builder)
    return "\n".join(lines[:commands])


def large_scenarios() -> st.SearchStrategy[str]:
    return st.builds(large_scenario, st.integers(0, 2**32 - 1))


@dataclass(frozen=True)
class Broken:
    """Invalid text and where its one broken token is (1-based line, columns it spans)."""

    text: str
    line: int
    first_column: int
    last_column: int


# A character no token position accepts (not in a name, a value, an option or a verb).
BAD_CHARS = ("@", "!", "é", "\u00a0x", "=", "/")


@st.composite
def invalid_scenarios(draw: st.DrawFn) -> Broken:
    """A valid scenario, one command per line, with one character added to one token.

    No token of the language takes any of `BAD_CHARS`, and the text before the token is
    unchanged and valid, so the first syntax error is at that token: the parser must say so.
    """
    commands = draw(scenario_commands(max_commands=12).filter(bool))
    line_index = draw(st.integers(0, len(commands) - 1))
    tokens = commands[line_index].split(" ")
    token_index = draw(st.integers(0, len(tokens) - 1))
    bad = draw(st.sampled_from(BAD_CHARS))
    token = tokens[token_index]
    at = draw(st.integers(0, len(token)))
    tokens[token_index] = token[:at] + bad + token[at:]
    column = 1 + sum(len(t) + 1 for t in tokens[:token_index])
    broken = [*commands]
    broken[line_index] = " ".join(tokens)
    return Broken("\n".join(broken), line_index + 1, column, column + len(tokens[token_index]) - 1)


def fuzz_examples(default: int) -> int:
    """``max_examples`` for a fuzz test: ``default`` in the suite, ``FUZZ_EXAMPLES`` for a long
    local run (e.g. ``FUZZ_EXAMPLES=2000 pytest tests/engine/test_fuzz_engine.py``)."""
    return int(os.environ.get("FUZZ_EXAMPLES", default))


# Words a mutation puts in place of a token: every verb and option (right words, wrong place),
# the reserved `file`, names just past the limits, and a value that is not a name.
MUTATION_WORDS = (
    *PROCESS_VERBS,
    *("release", "as", "ro", "rw", "on", "off", "shared", "longterm", "fast", "race"),
    *("wrong-side-ok", "file", "file=", "file=F", "A2345678901234567", "9lives", "1" * 33, ";"),
)


@st.composite
def mutated_scenarios(draw: st.DrawFn) -> str:
    """A valid scenario, one command per line, with one token dropped, doubled, swapped with
    its neighbour or replaced by another word of the language. The result may still be valid
    (a dropped optional word), so a test compares with what `engine.syntax.parse` says."""
    commands = draw(scenario_commands(max_commands=12).filter(bool))
    line_index = draw(st.integers(0, len(commands) - 1))
    tokens = commands[line_index].split(" ")
    i = draw(st.integers(0, len(tokens) - 1))
    how = draw(st.sampled_from(("drop", "double", "swap", "replace")))
    if how == "drop":
        del tokens[i]
    elif how == "double":
        tokens.insert(i, tokens[i])
    elif how == "swap" and i + 1 < len(tokens):
        tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
    else:
        tokens[i] = draw(st.sampled_from(MUTATION_WORDS))
    broken = [*commands]
    broken[line_index] = " ".join(tokens)
    return "\n".join(broken)


# ---- lessons (DESIGN.md §8): annotation lines around the commands of a valid scenario
GOAL_KINDS = ("leak", "stale", "userfault", "file-corrupted", "segv", "needless-copy")
NOTES = (
    "now press ] to see 5.9",
    "the pipe still holds frame #1; what will it read?",
    "ü <b>&amp;",
)


def _goal_term(c: Chooser, eras: Sequence[str]) -> str:
    form = c.pick(("kind", "not", "ok", "differ"))
    if form == "differ":
        return f"differ@{c.pick(eras)},{c.pick(eras)}"
    if form == "ok":
        return f"ok@{c.pick(eras)}"
    return f"{'!' if form == 'not' else ''}{c.pick(GOAL_KINDS)}@{c.pick(eras)}"


@st.composite
def lessons(draw: st.DrawFn, max_commands: int = 20) -> str:
    """Valid lesson text: the commands of `scenario_commands`, one a line, with `#title`,
    `#policy`, `#swap` and `#goal` before the first command, `#:` notes anywhere, `#?` questions
    before reads, and plain comments. Whoever adds an annotation adds it here."""
    from engine.policies import POLICIES

    eras = (*POLICIES, "latest")
    c = _draw_chooser(draw)
    commands = draw(scenario_commands(max_commands))
    lines: list[str] = []
    if c.coin(0.5):
        lines.append(f"#title {c.pick(NOTES)}")
    if c.coin(0.5):
        lines.append(f"#policy {c.pick(eras)}")
    if c.coin(0.3):
        lines.append(f"#swap {c.pick(('zram', 'file'))}")
    if c.coin(0.4):
        terms = [_goal_term(c, tuple(POLICIES)) for _ in range(1 + int(c.coin(0.5)))]
        lines.append("#goal " + " ".join(terms))
    for command in commands:
        if c.coin(0.2):
            lines.append(f"#: {c.pick(NOTES)}")
        if command.split()[1:2] == ["read"] and c.coin(0.6):
            lines.append("#? what does it read?")
        if c.coin(0.1):
            lines.append(f"  {c.pick(COMMENTS)}")
        lines.append(command)
    if c.coin(0.2):
        lines.append(f"#: {c.pick(NOTES)}")
    return "\n".join(lines)
