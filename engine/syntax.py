"""The scenario language (DESIGN.md §2, §8): parser, canonical printer and reference naming.

The text form is to cowlab what FEN is to chess: short, readable, pasted into links and mails.
`parse` turns text into a `Scenario`; `format_scenario` prints the canonical text, and
``parse(format_scenario(s)) == s`` for every scenario `parse` can produce (with ``sep="\\n"``,
or ``sep="; "`` for a scenario without comments or annotations); `canonical_text` picks the
separator links use.

Lexical rules. Commands are separated by newlines or `;`; a trailing ``\\r`` (CRLF text) is
ignored; `#` starts a comment to the end of the line (it also hides any `;` after it); empty
commands are skipped.

A line whose first non-blank word is `#title`, `#policy`, `#:`, `#?`, `#goal` or `#swap`
(followed by a blank or the end of the line) is an annotation of DESIGN.md §8; empty commands
before it (`;` alone) do not count, they are skipped like blanks. `_LessonParser` turns the
annotations into `Scenario.annotations`, and a malformed one is a `ScenarioError` like any
other. Every `#` part is kept (`Scenario.remarks`) so that `canonical_text` keeps comments and
annotations in links: joined by newlines when there is any, by `;` otherwise.

Tokens are separated by spaces and tabs only: any other character is part of a token and will
not match the name or value pattern. Columns are 1-based positions of the
offending token in the original line, counted in characters.

Which verbs a name takes. The first token names a process or a reference (or is the keyword
`file`); the verb is always the second token. `read`, `write` and `release` exist for both, so
the parser tracks names as it goes, in the order of the text:

- a name becomes a *reference* when a `vmsplice`/`get`/`pin`/`iouring` command names it with
  `as R`, or when the machine names it (`auto_ref_name`; the command keeps ``name=None``);
- a name becomes a *process* when it is the first token of a process command or a `fork` child;
- a name becomes a *file* through `file F VALUE` or `mmap a file=F`.

A known reference takes the reference verbs (`read`, `write VALUE`, `release`). Any other name
takes the process verbs — except that a name not seen before is read as a reference in the two
forms no process command has, `X read` (no page) and `X release`, so that a mistyped reference
is an error step of the engine ("no reference X"), like an unknown process, not a syntax error.
`X write V` with `X` unknown is a process write of page `V`.

Processes, references and files share one namespace, so a name used as one kind and then as
another is a syntax error (the verbs could not be told apart). Re-taking a reference under a
name it already has is allowed; what that means is the engine's call. `file` is reserved
everywhere a name goes. In an `mmap` page list `ro` and `shared` are flags, not page names, and
need `file=F` before them, so a user who writes `P mmap a ro` hears about it instead of getting
a page called `ro`.

Limits (`engine.limits`) are checked while parsing, at the token that crosses them: commands,
text size in bytes (UTF-8), distinct process names, distinct page names one process mmaps (a
fork child starts from its parent's set), and references taken (every take counts, released or
not).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from engine import limits
from engine.annotations import (
    ANNOTATION_WORDS,
    GOAL_VERDICT_KINDS,
    Annotations,
    GoalTerm,
    Question,
    Remark,
    SwapDevice,
)
from engine.commands import (
    Backing,
    ClearSoftdirty,
    Command,
    Dontfork,
    Dontneed,
    Exit,
    FileDecl,
    ForceWrite,
    Fork,
    Mmap,
    Mprotect,
    Munmap,
    PteMap,
    Read,
    RefKind,
    RefRead,
    RefRelease,
    RefWrite,
    Scenario,
    Swapout,
    TakeRef,
    UffdWp,
    Write,
)
from engine.policies import POLICIES, UnknownPolicy, get_policy

__all__ = [
    "ScenarioError",
    "ScenarioLimitError",
    "auto_ref_name",
    "canonical_prefix",
    "canonical_text",
    "format_command",
    "format_scenario",
    "parse",
    "reference_names",
]

NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,15}")
VALUE_RE = re.compile(r"[A-Za-z0-9_.:+-]{1,32}")
FILE_KEYWORD = "file"
END_OF_LINE = "end of line"

PROC_VERBS = (
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
REF_VERBS = ("read", "write", "release")

_NAME_RULE = "a letter, then up to 15 letters, digits, `_` or `-`"
_VALUE_RULE = "1 to 32 of letters, digits, `_`, `.`, `:`, `+` or `-`"

# The first token of auto names per kind; the n-th name (n ≥ 2) appends n.
_AUTO_PREFIX: dict[str, str] = {"vmsplice": "pipe", "get": "gup", "pin": "pin", "iouring": "io"}

NameKind = Literal["process", "reference", "file"]


class ScenarioError(ValueError):
    """Malformed scenario text: where (1-based line and column), what was expected, what was found.

    ``found`` is the offending token as written, or ``"end of line"`` when the command ended
    too early.
    """

    def __init__(
        self, line: int, column: int, expected: str, found: str, message: str | None = None
    ) -> None:
        self.line = line
        self.column = column
        self.expected = expected
        self.found = found
        if message is None:
            message = f"line {line}, column {column}: expected {expected}, found {_quote(found)}"
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the error picklable (multiprocessing, caches) despite the custom signature.
        return (type(self), (self.line, self.column, self.expected, self.found, str(self)))


class ScenarioLimitError(ScenarioError):
    """The text is well-formed but crosses one of the limits of DESIGN.md §7."""


def _quote(found: str) -> str:
    if found == END_OF_LINE:
        return found
    # A token may be long or hold control characters; keep the message one short line.
    shown = found if len(found) <= 40 else found[:40] + "…"
    quoted = json.dumps(shown, ensure_ascii=False)
    # Invisible or unencodable characters (NBSP, lone surrogates) are what confuse a user most,
    # so then spell every non-ASCII character as an escape.
    return quoted if quoted.isprintable() else json.dumps(shown)


def auto_ref_name(kind: RefKind | str, taken: AbstractSet[str]) -> str:
    """The name the machine gives a reference taken without `as R`.

    `pipe`, `pipe2`, `pipe3`… for vmsplice, `gup…` for get, `pin…` for pin, `io…` for iouring:
    the first not in ``taken`` (every process, reference and file name used so far). The parser
    and the engine both call this, so `pipe read` in the text reaches the pipe the engine made.
    """
    prefix = _AUTO_PREFIX[kind]
    if prefix not in taken:
        return prefix
    n = 2
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


@dataclass(slots=True)
class _Names:
    """The names a scenario has introduced so far, replayed command by command.

    One table serves `parse` and `reference_names`, so the parser's idea of which name is a
    reference and the engine's automatic reference names cannot drift apart.
    """

    kinds: dict[str, NameKind] = field(default_factory=dict)
    pages: dict[str, frozenset[str]] = field(default_factory=dict)
    procs: int = 0  # names in ``kinds`` that are processes
    takes: int = 0  # reference takes, released or not

    def kind(self, name: str) -> NameKind | None:
        return self.kinds.get(name)

    def add(self, name: str, kind: NameKind) -> None:
        # The first use fixes a name's kind; the parser has already refused a second kind.
        if name not in self.kinds:
            self.kinds[name] = kind
            self.procs += kind == "process"

    def note(self, cmd: Command) -> str | None:
        """Register the names `cmd` introduces; for a reference take, return its name."""
        if isinstance(cmd, FileDecl):
            self.add(cmd.name, "file")
            return None
        if isinstance(cmd, RefRead | RefWrite | RefRelease):
            return None
        self.add(cmd.proc, "process")
        if isinstance(cmd, Mmap):
            self.pages[cmd.proc] = self.pages.get(cmd.proc, frozenset()) | set(cmd.pages)
            if cmd.file is not None:
                self.add(cmd.file, "file")
        elif isinstance(cmd, Fork):
            self.add(cmd.child, "process")
            # The child is a copy of the parent: it starts with the parent's pages.
            self.pages[cmd.child] = self.pages.get(cmd.proc, frozenset())
        elif isinstance(cmd, TakeRef):
            self.takes += 1
            name = cmd.name if cmd.name is not None else auto_ref_name(cmd.kind, self.kinds.keys())
            self.add(name, "reference")
            return name
        return None


def reference_names(commands: Iterable[Command]) -> tuple[str | None, ...]:
    """For each command, the name of the reference it takes (explicit or automatic), else None.

    The engine uses this to name references exactly as the parser did, whether or not the take
    succeeds (a failed take still uses up its automatic name).
    """
    names = _Names()
    return tuple(names.note(cmd) for cmd in commands)


# --------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    column: int  # 1-based


_TOKEN_RE = re.compile(r"[^ \t;]+|;")


class _Line(NamedTuple):
    """One source line: its commands (tokens and end column each), and its `#` part."""

    number: int
    commands: list[tuple[list[_Token], int]]
    hash_text: str | None  # from the `#` to the end of the line, trailing blanks removed
    hash_column: int  # 1-based column of the `#`


def _lines(text: str) -> Iterator[_Line]:
    """Every source line, split into its commands and its comment or annotation."""
    for line_no, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        hash_at = line.find("#")
        hash_text: str | None = None
        if hash_at >= 0:
            hash_text = line[hash_at:].rstrip(" \t\r")
            line = line[:hash_at]
        commands: list[tuple[list[_Token], int]] = []
        tokens: list[_Token] = []
        for m in _TOKEN_RE.finditer(line):
            if m.group() == ";":
                if tokens:
                    commands.append((tokens, m.start() + 1))
                tokens = []
            else:
                tokens.append(_Token(m.group(), m.start() + 1))
        if tokens:
            last = tokens[-1]
            commands.append((tokens, last.column + len(last.text)))
        yield _Line(line_no, commands, hash_text, hash_at + 1)


def _commands_text(text: str) -> Iterator[tuple[int, list[_Token], int]]:
    """Yield (line, tokens, end column) for every non-empty command in the text."""
    for line in _lines(text):
        for tokens, end in line.commands:
            yield line.number, tokens, end


def _check_size(text: str) -> None:
    # Every character is at least one byte, so the crossing point lies in the first MAX+1
    # characters: encoding only those keeps the check cheap for any input size.
    cap = limits.MAX_DECOMPRESSED_BYTES
    # surrogatepass: a str may hold lone surrogates (3 bytes each); they fail later as tokens.
    if len(text[: cap + 1].encode("utf-8", errors="surrogatepass")) <= cap:
        return
    size = 0
    index = 0  # becomes the first character that does not fit
    for index, ch in enumerate(text):  # noqa: B007 - the loop variable is the result
        code = ord(ch)
        size += 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
        if size > cap:
            break
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    raise ScenarioLimitError(
        line,
        column,
        f"at most {cap} bytes of scenario text",
        f"more than {cap} bytes",
        f"line {line}, column {column}: the scenario is longer than the limit of {cap} bytes",
    )


# --------------------------------------------------------------------------------------------
# Parser


def parse(text: str) -> Scenario:
    """Parse scenario text into a `Scenario`; raise `ScenarioError` on malformed text."""
    _check_size(text)
    names = _Names()
    commands: list[Command] = []
    lines: list[int] = []
    lesson = _LessonParser()
    for line in _lines(text):
        for tokens, end in line.commands:
            if len(commands) == limits.MAX_COMMANDS:
                raise _limit(line.number, tokens[0].column, "commands", limits.MAX_COMMANDS)
            cmd = _CommandParser(names, line.number, tokens, end).command()
            lesson.steps += 1
            if lesson.pending_notes or lesson.pending_question is not None:
                lesson.command(cmd, line.number, tokens[0].column)
            names.note(cmd)
            commands.append(cmd)
            lines.append(line.number)
        if line.hash_text is not None:
            if line.commands:
                lesson.remarks.append(Remark(len(commands), line.hash_text, trailing=True))
            else:
                lesson.hash_line(line.number, line.hash_column, line.hash_text)
    return Scenario(tuple(commands), tuple(lines), tuple(lesson.remarks), lesson.finish())


class _LessonParser:
    """Collects the annotations of DESIGN.md §8 while the commands are parsed, in text order.

    Notes wait for the next command (whose step shows them); notes before the first command
    belong to step 0 and notes after the last to the last step. A question waits for the next
    command, which must be a read.
    """

    def __init__(self) -> None:
        self.remarks: list[Remark] = []
        self.steps = 0  # commands parsed so far
        self.title: str | None = None
        self.policy: str | None = None
        self.swap: SwapDevice | None = None
        self.goal: tuple[GoalTerm, ...] | None = None
        self.notes: dict[int, list[str]] = {}
        self.pending_notes: list[str] = []
        self.questions: list[Question] = []
        self.pending_question: tuple[str, int, int] | None = None  # (text, line, column)
        self.seen: dict[str, int] = {}  # once-only word -> the line it was on

    def command(self, cmd: Command, line: int, column: int) -> None:
        """Give the waiting notes and question to ``cmd``, the command of step ``steps``
        (`parse` counts the step and calls this only when something waits: most commands
        of most scenarios have nothing waiting)."""
        if self.pending_notes:
            self.notes.setdefault(self.steps, []).extend(self.pending_notes)
            self.pending_notes = []
        if self.pending_question is not None:
            text, q_line, _ = self.pending_question
            if not isinstance(cmd, Read | RefRead):
                raise ScenarioError(
                    line,
                    column,
                    f"a read (`P read a` or `R read`) after the `#?` question of line {q_line}",
                    format_command(cmd),
                )
            self.questions.append(Question(self.steps, text))
            self.pending_question = None

    def hash_line(self, line: int, column: int, text: str) -> None:
        """A line that holds only a `#` part: an annotation, or else a plain comment."""
        self.remarks.append(Remark(self.steps, text))
        word, *after = re.split(r"[ \t]", text, maxsplit=1)
        rest = after[0] if after else ""
        if word not in ANNOTATION_WORDS:
            return
        rest = rest.strip(" \t")
        rest_column = column + len(text) - len(text[len(word) :].lstrip(" \t"))
        if word == "#:" and not self.steps:
            # Before the first command a note introduces the lesson: step 0, the empty machine.
            self.notes.setdefault(0, []).append(rest)
        elif word == "#:":
            self.pending_notes.append(rest)
        elif word == "#?":
            self.question(line, column, rest, rest_column)
        else:
            self.once(word, line, column)
            if word == "#title":
                self.title = self.required(rest, line, rest_column, "a title after `#title`")
            elif word == "#policy":
                self.policy = _policy_id(rest, line, rest_column, "after `#policy`")
            elif word == "#swap":
                if rest not in ("zram", "file"):
                    raise ScenarioError(
                        line, rest_column, "`zram` or `file` after `#swap`", rest or END_OF_LINE
                    )
                self.swap = "zram" if rest == "zram" else "file"
            else:
                self.goal = _goal_terms(rest, line, rest_column)
        # A remark keeps the canonical spelling of an annotation: one space after the word.
        self.remarks[-1] = Remark(self.steps, f"{word} {rest}" if rest else word)

    def once(self, word: str, line: int, column: int) -> None:
        if word in self.seen:
            raise ScenarioError(
                line, column, f"at most one `{word}` line (one is on line {self.seen[word]})", word
            )
        self.seen[word] = line
        if word == "#title" and self.steps:
            raise ScenarioError(line, column, "`#title` before the first command", word)

    def question(self, line: int, column: int, text: str, text_column: int) -> None:
        if self.pending_question is not None:
            raise ScenarioError(
                line,
                column,
                f"a read (`P read a` or `R read`) after the `#?` question of line "
                f"{self.pending_question[1]}",
                "#?",
            )
        self.pending_question = (
            self.required(text, line, text_column, "a question"),
            line,
            column,
        )

    @staticmethod
    def required(text: str, line: int, column: int, expected: str) -> str:
        if not text:
            raise ScenarioError(line, column, expected, END_OF_LINE)
        return text

    def finish(self) -> Annotations:
        if self.pending_question is not None:
            text, line, column = self.pending_question
            raise ScenarioError(
                line,
                column,
                "a read (`P read a` or `R read`) after this `#?` question",
                "end of text",
                f"line {line}: expected a read (`P read a` or `R read`) after this `#?` "
                "question, found the end of the text",
            )
        if self.pending_notes:
            self.notes.setdefault(self.steps, []).extend(self.pending_notes)
        return Annotations(
            title=self.title,
            policy=self.policy,
            notes=tuple((step, "\n".join(self.notes[step])) for step in sorted(self.notes)),
            questions=tuple(self.questions),
            goal=self.goal,
            swap=self.swap or "file",
        )


def _policy_id(text: str, line: int, column: int, where: str) -> str:
    """A policy id as written, checked against the engine's eras (and `latest`)."""
    expected = f"a policy id {where} (one of: {', '.join([*POLICIES, 'latest'])})"
    if not text:
        raise ScenarioError(line, column, expected, END_OF_LINE)
    # Custom lab points (`custom:…`) are ids for links and the CLI, not part of the language:
    # a scenario names eras, so its annotations mean the same after the knobs grow.
    if text.startswith("custom:"):
        raise ScenarioError(line, column, expected, text)
    try:
        get_policy(text)
    except UnknownPolicy:
        raise ScenarioError(line, column, expected, text) from None
    return text


_GOAL_FORMS = "`KIND@ID`, `!KIND@ID`, `ok@ID` or `differ@A,B`"


def _goal_terms(text: str, line: int, column: int) -> tuple[GoalTerm, ...]:
    """The terms of `#goal TERM …`: every term must hold (DESIGN.md §8)."""
    terms: list[GoalTerm] = []
    for m in re.finditer(r"[^ \t]+", text):
        terms.append(_goal_term(m.group(), line, column + m.start()))
    if not terms:
        raise ScenarioError(line, column, f"a goal term ({_GOAL_FORMS})", END_OF_LINE)
    return tuple(terms)


def _goal_term(word: str, line: int, column: int) -> GoalTerm:
    head, at, ids = word.partition("@")
    if not at:
        raise ScenarioError(line, column, f"a goal term ({_GOAL_FORMS})", word)
    ids_column = column + len(head) + 1
    negated = head.startswith("!")
    kind_word = head[1:] if negated else head
    if kind_word == "differ" and not negated:
        pair = ids.split(",")
        if len(pair) != 2:
            raise ScenarioError(line, ids_column, "two policy ids `A,B` after `differ@`", ids)
        first = _policy_id(pair[0], line, ids_column, "in `differ@A,B`")
        second = _policy_id(pair[1], line, ids_column + len(pair[0]) + 1, "in `differ@A,B`")
        return GoalTerm(word, "differ", (first, second))
    policy = _policy_id(ids, line, ids_column, f"after `{head}@`")
    if kind_word == "ok" and not negated:
        return GoalTerm(word, "ok", (policy,))
    if kind_word not in GOAL_VERDICT_KINDS:
        kinds = ", ".join(GOAL_VERDICT_KINDS)
        raise ScenarioError(
            line,
            column + negated,
            f"a verdict kind (one of: {kinds}), `ok` or `differ` before `@`",
            kind_word or head,
        )
    return GoalTerm(word, "no-verdict" if negated else "verdict", (policy,), kind_word)


def _limit(line: int, column: int, what: str, cap: int, whose: str = "") -> ScenarioLimitError:
    return ScenarioLimitError(
        line,
        column,
        f"at most {cap} {what}{whose}",
        f"{cap + 1} {what}{whose}",
        f"line {line}, column {column}: more than {cap} {what}{whose}, the limit",
    )


def _options_text(options: Sequence[str]) -> str:
    items = [f"`{o}`" for o in options] + [END_OF_LINE]
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]


class _CommandParser:
    """Parses the tokens of one command against the names known so far."""

    def __init__(self, names: _Names, line: int, tokens: list[_Token], end: int) -> None:
        self.names = names
        self.line = line
        self.tokens = tokens
        self.end = end  # column just past the last token, where "end of line" is reported
        self.pos = 0
        self.proc = ""  # the process this command runs as, once known

    # -- token access ---------------------------------------------------------------------

    def error(self, tok: _Token | None, expected: str, found: str | None = None) -> ScenarioError:
        if tok is None:
            return ScenarioError(self.line, self.end, expected, END_OF_LINE)
        return ScenarioError(self.line, tok.column, expected, tok.text if found is None else found)

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str) -> _Token:
        tok = self.peek()
        if tok is None:
            raise self.error(None, expected)
        self.pos += 1
        return tok

    def end_of_command(self) -> None:
        tok = self.peek()
        if tok is not None:
            raise self.error(tok, END_OF_LINE)

    def name(self, what: str, tok: _Token | None = None) -> str:
        """The next token (or ``tok``) as a name; ``what`` is e.g. "a page name"."""
        if tok is None:
            tok = self.take(what)
        if tok.text == FILE_KEYWORD:
            raise self.error(tok, f"{what} other than the keyword `file`")
        if NAME_RE.fullmatch(tok.text) is None:
            raise self.error(tok, f"{what} ({_NAME_RULE})")
        return tok.text

    def value(self) -> str:
        tok = self.take("a value")
        if VALUE_RE.fullmatch(tok.text) is None:
            raise self.error(tok, f"a value ({_VALUE_RULE})")
        return tok.text

    def choice(self, options: tuple[str, str]) -> str:
        expected = f"`{options[0]}` or `{options[1]}`"
        tok = self.take(expected)
        if tok.text not in options:
            raise self.error(tok, expected)
        return tok.text

    def kind_of(self, name: str) -> NameKind | None:
        # The command's own process counts even before the command is registered, so that
        # `P pin a ro as P` is caught.
        if name == self.proc:
            return "process"
        return self.names.kind(name)

    def fresh(self, tok: _Token, what: str, want: NameKind) -> str:
        """A name that is ``want`` or not yet used: the namespace is shared."""
        name = self.name(what, tok)
        kind = self.kind_of(name)
        if kind is not None and kind != want:
            raise self.error(tok, f"{what} (`{name}` is already a {kind})")
        return name

    # -- commands -------------------------------------------------------------------------

    def command(self) -> Command:
        first = self.take("a command")
        if first.text == FILE_KEYWORD:
            return self.file_decl()
        name = self.name("a process or reference name", first)
        kind = self.names.kind(name)
        if kind == "file":
            raise self.error(first, f"a process or reference name (`{name}` is a file)")
        if kind == "reference":
            return self.ref_command(name)
        verb = self.peek()
        # A name never seen before, in the two forms only a reference has (`X read` without a
        # page, `X release`): an unknown reference the engine reports, not a syntax error.
        if (
            kind is None
            and verb is not None
            and (verb.text == "release" or (verb.text == "read" and len(self.tokens) == 2))
        ):
            return self.ref_command(name)
        return self.proc_command(first)

    def file_decl(self) -> FileDecl:
        tok = self.take("a file name")
        name = self.fresh(tok, "a file name", "file")
        value = self.value()
        self.end_of_command()
        return FileDecl(name, value)

    def ref_command(self, ref: str) -> RefRead | RefWrite | RefRelease:
        expected = "a reference verb (one of: read, write, release)"
        verb = self.take(expected)
        cmd: RefRead | RefWrite | RefRelease
        if verb.text == "read":
            cmd = RefRead(ref)
        elif verb.text == "write":
            cmd = RefWrite(ref, self.value())
        elif verb.text == "release":
            cmd = RefRelease(ref)
        else:
            raise self.error(verb, expected)
        self.end_of_command()
        return cmd

    def proc_command(self, first: _Token) -> Command:
        proc = first.text
        self.register_proc(first)
        self.proc = proc
        expected = f"a command verb (one of: {', '.join(PROC_VERBS)})"
        verb = self.take(expected)
        v = verb.text
        cmd: Command
        if v == "mmap":
            cmd = self.mmap(proc)
        elif v == "read":
            cmd = Read(proc, self.page())
        elif v == "write":
            page = self.page()
            cmd = Write(proc, page, self.value() if self.peek() is not None else None)
        elif v == "fork":
            child_tok = self.take("a child process name")
            child = self.fresh(child_tok, "a child process name", "process")
            self.register_proc(child_tok)
            cmd = Fork(proc, child)
        elif v == "exit":
            cmd = Exit(proc)
        elif v == "munmap":
            cmd = Munmap(proc, self.page())
        elif v == "dontneed":
            cmd = Dontneed(proc, self.page())
        elif v in ("dontfork", "dofork"):
            cmd = Dontfork(proc, self.page(), dofork=v == "dofork")
        elif v == "mprotect":
            page = self.page()
            cmd = Mprotect(proc, page, writable=self.choice(("ro", "rw")) == "rw")
        elif v == "pte-map":
            cmd = PteMap(proc, self.page())
        elif v == "clear-softdirty":
            cmd = ClearSoftdirty(proc)
        elif v == "swapout":
            cmd = Swapout(proc, self.page())
        elif v == "uffd-wp":
            page = self.page()
            cmd = UffdWp(proc, page, on=self.choice(("on", "off")) == "on")
        elif v in ("vmsplice", "get", "pin", "iouring"):
            cmd = self.take_ref(proc, verb)
        elif v == "forcewrite":
            page = self.page()
            value = self.value()
            race = self.peek_is("race")
            if not race and self.peek() is not None:
                raise self.error(self.peek(), _options_text(["race"]))
            cmd = ForceWrite(proc, page, value, race=race)
        else:
            raise self.error(verb, expected)
        self.end_of_command()
        return cmd

    def peek_is(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.text == word:
            self.pos += 1
            return True
        return False

    def page(self) -> str:
        return self.name("a page name")

    def register_proc(self, tok: _Token) -> None:
        """Refuse the process name that would be one too many (counted before registering)."""
        if tok.text in self.names.kinds or tok.text == self.proc:
            return
        procs = self.names.procs + (self.proc != "" and self.proc not in self.names.kinds)
        if procs >= limits.MAX_PROCS:
            raise _limit(self.line, tok.column, "processes", limits.MAX_PROCS)

    def mmap(self, proc: str) -> Mmap:
        pages: list[str] = []
        page_toks: list[_Token] = []
        tok = self.peek()
        while tok is not None and not _is_option(tok.text):
            if tok.text in ("ro", "shared"):
                raise self.error(tok, f"a page name (`{tok.text}` needs `file=F` before it)")
            page = self.name("a page name", tok)
            if page in pages:
                raise self.error(tok, "a page name not already in this mmap")
            pages.append(page)
            page_toks.append(tok)
            self.pos += 1
            tok = self.peek()
        if not pages:
            raise self.error(tok, "a page name")
        file: str | None = None
        backing: Backing = "base"
        flags: dict[str, bool] = {"shared": False, "ro": False}
        if tok is not None and tok.text.startswith("backing="):
            self.pos += 1
            word = tok.text[len("backing=") :]
            if word not in ("thp", "hugetlb"):
                raise self.error(tok, "`backing=thp` or `backing=hugetlb`")
            backing = "thp" if word == "thp" else "hugetlb"
            self.end_of_command()
        elif tok is not None:  # a `file=F` token
            if len(pages) > 1:
                raise self.error(tok, "a single page before `file=` (a file mapping is one page)")
            self.pos += 1
            file_tok = _Token(tok.text[5:], tok.column + 5)
            if not file_tok.text:
                raise self.error(tok, "a file name after `file=`")
            file = self.fresh(file_tok, "a file name", "file")
            self.flags(flags)
        self.count_pages(proc, pages, page_toks)
        return Mmap(
            proc,
            tuple(pages),
            file,
            shared=flags["shared"],
            readonly=flags["ro"],
            backing=backing,
        )

    def count_pages(self, proc: str, pages: list[str], toks: list[_Token]) -> None:
        known = set(self.names.pages.get(proc, frozenset()))
        for page, tok in zip(pages, toks, strict=True):
            known.add(page)
            if len(known) > limits.MAX_PAGES_PER_PROC:
                raise _limit(
                    self.line, tok.column, "pages", limits.MAX_PAGES_PER_PROC, f" in {proc}"
                )

    def flags(self, flags: dict[str, bool]) -> None:
        """Optional words in any order, each at most once; ``flags`` says which are allowed."""
        while (tok := self.peek()) is not None:
            if flags.get(tok.text) is False:
                flags[tok.text] = True
                self.pos += 1
                continue
            raise self.error(tok, _options_text([w for w, seen in flags.items() if not seen]))

    def take_ref(self, proc: str, verb: _Token) -> TakeRef:
        kind: RefKind
        if verb.text == "vmsplice":
            kind = "vmsplice"
        elif verb.text == "get":
            kind = "get"
        elif verb.text == "pin":
            kind = "pin"
        else:
            kind = "iouring"
        page = self.page()
        write = kind == "iouring"
        if kind in ("get", "pin"):
            write = self.choice(("ro", "rw")) == "rw"
        allowed = {
            "vmsplice": ("as",),
            "get": ("as", "wrong-side-ok"),
            "pin": ("longterm", "fast", "as", "wrong-side-ok"),
            "iouring": ("as",),
        }[kind]
        seen: dict[str, bool] = dict.fromkeys(allowed, False)
        hint = {
            "wrong-side-ok": f"`wrong-side-ok` is only for get and pin, not {kind}",
            "longterm": "`longterm` is only for pin"
            + (", and iouring pins are always long-term" if kind == "iouring" else ""),
            "fast": "`fast` is only for pin",
        }
        name: str | None = None
        while (tok := self.peek()) is not None:
            if seen.get(tok.text) is False:
                seen[tok.text] = True
                self.pos += 1
                if tok.text == "as":
                    ref_tok = self.take("a reference name after `as`")
                    name = self.fresh(ref_tok, "a reference name", "reference")
                continue
            options = [("as R" if w == "as" else w) for w, s in seen.items() if not s]
            expected = _options_text(options)
            if tok.text in hint and tok.text not in seen:
                expected += f" ({hint[tok.text]})"
            raise self.error(tok, expected)
        if self.names.takes >= limits.MAX_REFS:
            raise _limit(self.line, verb.column, "references", limits.MAX_REFS)
        return TakeRef(
            proc,
            page,
            kind,
            write=write,
            longterm=kind == "iouring" or seen.get("longterm", False),
            fast=seen.get("fast", False),
            name=name,
            wrong_side_ok=seen.get("wrong-side-ok", False),
        )


# --------------------------------------------------------------------------------------------
# Canonical printer


def _is_option(token: str) -> bool:
    """`file=F` and `backing=B` end an mmap's page list: a key=value word is never a page name
    (a name has no `=`), so a bare word after `mmap` stays a page name (DESIGN.md §10)."""
    return token.startswith(("file=", "backing="))


def _check_name(name: str, what: str) -> None:
    if name == FILE_KEYWORD or NAME_RE.fullmatch(name) is None:
        raise ValueError(f"{what} {name!r} cannot be written as a scenario name")


def _check_value(value: str) -> None:
    if VALUE_RE.fullmatch(value) is None:
        raise ValueError(f"value {value!r} cannot be written as a scenario value")


def _format_take(cmd: TakeRef) -> list[str]:
    if cmd.kind == "vmsplice" and cmd.write:
        raise ValueError("a vmsplice reference is always read-only")
    if cmd.kind == "iouring" and not (cmd.write and cmd.longterm):
        raise ValueError("an iouring reference is always FOLL_WRITE|FOLL_LONGTERM")
    if cmd.kind != "pin" and (cmd.fast or (cmd.longterm and cmd.kind != "iouring")):
        raise ValueError(f"`longterm` and `fast` are only for pin, not {cmd.kind}")
    if cmd.wrong_side_ok and cmd.kind not in ("get", "pin"):
        raise ValueError(f"`wrong-side-ok` is only for get and pin, not {cmd.kind}")
    words = [cmd.proc, cmd.kind, cmd.page]
    if cmd.kind in ("get", "pin"):
        words.append("rw" if cmd.write else "ro")
    if cmd.kind == "pin":
        words += ["longterm"] * cmd.longterm + ["fast"] * cmd.fast
    if cmd.name is not None:
        _check_name(cmd.name, "reference")
        words += ["as", cmd.name]
    if cmd.wrong_side_ok:
        words.append("wrong-side-ok")
    return words


def _format_mmap(cmd: Mmap) -> list[str]:
    if not cmd.pages:
        raise ValueError("mmap needs at least one page")
    if len(set(cmd.pages)) != len(cmd.pages):
        raise ValueError("mmap names a page twice")
    for page in cmd.pages:
        if page in ("ro", "shared"):
            raise ValueError(f"{page!r} is a flag of mmap, not a page name")
    words = [cmd.proc, "mmap", *cmd.pages]
    if cmd.backing != "base":
        if cmd.file is not None or cmd.shared or cmd.readonly:
            raise ValueError("`backing=` is for private anonymous mappings only")
        return [*words, f"backing={cmd.backing}"]
    if cmd.file is None:
        if cmd.shared or cmd.readonly:
            raise ValueError("`shared` and `ro` need a file mapping")
        return words
    if len(cmd.pages) != 1:
        raise ValueError("a file mapping is exactly one page")
    _check_name(cmd.file, "file")
    return words + [f"file={cmd.file}"] + ["shared"] * cmd.shared + ["ro"] * cmd.readonly


def format_command(cmd: Command) -> str:
    """The canonical text of one command: single spaces, optional words in the order of §2.

    Raises ValueError for a command no text can express (a name or value outside the patterns,
    a combination the language has no words for), so a bad command never becomes a bad link.
    """
    words: list[str]
    if isinstance(cmd, FileDecl):
        _check_name(cmd.name, "file")
        _check_value(cmd.value)
        return f"{FILE_KEYWORD} {cmd.name} {cmd.value}"
    if isinstance(cmd, RefRead | RefWrite | RefRelease):
        _check_name(cmd.ref, "reference")
        if isinstance(cmd, RefWrite):
            _check_value(cmd.value)
            return f"{cmd.ref} write {cmd.value}"
        return f"{cmd.ref} {'read' if isinstance(cmd, RefRead) else 'release'}"
    _check_name(cmd.proc, "process")
    page = getattr(cmd, "page", None)
    if isinstance(page, str):
        _check_name(page, "page")
    if isinstance(cmd, Mmap):
        for p in cmd.pages:
            _check_name(p, "page")
        words = _format_mmap(cmd)
    elif isinstance(cmd, Read):
        words = [cmd.proc, "read", cmd.page]
    elif isinstance(cmd, Write):
        words = [cmd.proc, "write", cmd.page]
        if cmd.value is not None:
            _check_value(cmd.value)
            words.append(cmd.value)
    elif isinstance(cmd, Fork):
        _check_name(cmd.child, "process")
        words = [cmd.proc, "fork", cmd.child]
    elif isinstance(cmd, Exit):
        words = [cmd.proc, "exit"]
    elif isinstance(cmd, Munmap):
        words = [cmd.proc, "munmap", cmd.page]
    elif isinstance(cmd, Dontneed):
        words = [cmd.proc, "dontneed", cmd.page]
    elif isinstance(cmd, Dontfork):
        words = [cmd.proc, "dofork" if cmd.dofork else "dontfork", cmd.page]
    elif isinstance(cmd, Mprotect):
        words = [cmd.proc, "mprotect", cmd.page, "rw" if cmd.writable else "ro"]
    elif isinstance(cmd, PteMap):
        words = [cmd.proc, "pte-map", cmd.page]
    elif isinstance(cmd, ClearSoftdirty):
        words = [cmd.proc, "clear-softdirty"]
    elif isinstance(cmd, Swapout):
        words = [cmd.proc, "swapout", cmd.page]
    elif isinstance(cmd, UffdWp):
        words = [cmd.proc, "uffd-wp", cmd.page, "on" if cmd.on else "off"]
    elif isinstance(cmd, TakeRef):
        words = _format_take(cmd)
    else:
        _check_value(cmd.value)
        words = [cmd.proc, "forcewrite", cmd.page, cmd.value] + ["race"] * cmd.race
    return " ".join(words)


def format_scenario(scenario: Scenario, sep: str = "\n") -> str:
    """The canonical text of a scenario, commands joined by ``sep`` (``"\\n"`` or ``"; "``).

    ``sep`` may hold only spaces, tabs, `;` and newlines, and must hold a `;` or a newline,
    or the commands would run together. A scenario with comments or annotations prints them
    too, one per line (a trailing comment two spaces after its command), and so needs
    ``sep="\\n"``: a `#` part runs to the end of its line and would swallow any other separator.
    """
    if not sep or set(sep) - set(" \t;\n") or not (set(sep) & set(";\n")):
        raise ValueError(f"separator {sep!r} does not separate commands")
    if not scenario.remarks:
        if scenario.annotations.is_lesson:
            raise ValueError("annotations without the remarks that spell them cannot be printed")
        return sep.join(format_command(cmd) for cmd in scenario.commands)
    if sep != "\n":
        raise ValueError("a scenario with comments or annotations is joined by newlines")
    trailing: dict[int, str] = {}
    lines_after: dict[int, list[str]] = {}
    for remark in scenario.remarks:
        if not remark.text.startswith("#") or "\n" in remark.text or remark.text[-1] in " \t\r":
            raise ValueError(f"remark {remark.text!r} is not one `#` line")
        if remark.trailing:
            trailing[remark.at] = remark.text
        else:
            lines_after.setdefault(remark.at, []).append(remark.text)
    out = list(lines_after.get(0, ()))
    for i, cmd in enumerate(scenario.commands, start=1):
        text = format_command(cmd)
        out.append(f"{text}  {trailing[i]}" if i in trailing else text)
        out.extend(lines_after.get(i, ()))
    return "\n".join(out)


def canonical_text(scenario: Scenario) -> str:
    """The one text of a scenario that links carry and memos are keyed by (DESIGN.md §5, §8).

    Commands joined by `;` as links always were; a scenario with any `#` line or comment is
    joined by newlines instead, comments and annotations kept.
    """
    return format_scenario(scenario, "\n" if scenario.remarks else ";")


def canonical_prefix(scenario: Scenario, upto: int) -> str:
    """The canonical text of the first ``upto`` commands, with the `#` lines that belong to
    them: what a link to "this scenario so far" carries, so a lesson's title, policy and goal
    survive when a learner extends it from a step.

    Kept: every remark before command ``upto`` and its trailing comment; a line right after it
    is kept unless it is a note or a question, which belong to the command that followed.
    """

    def belongs(remark: Remark) -> bool:
        if remark.at != upto:
            return remark.at < upto
        # Annotations are printed with one space after their word (see _LessonParser).
        return remark.trailing or remark.text.split(" ", 1)[0] not in ("#:", "#?")

    kept = tuple(r for r in scenario.remarks if belongs(r))
    prefix = Scenario(scenario.commands[:upto], remarks=kept)
    return format_scenario(prefix, "\n" if kept else ";")
