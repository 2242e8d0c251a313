"""Links that never break: the v=1 corpus in tests/data/links_v1.txt and its digests.

Every line of the corpus is a link as it was shared — every preset under every policy, and
hand-written links with long ``z:`` forms, odd names, every command form and every way a link
gets escaped — with the sha256 of the trace it must show: the canonical JSON
(`engine.trace.trace_to_json`, keys sorted, no spaces, UTF-8) of the link's scenario replayed
under the link's policy. tests/app/test_links_v1.py fails when a change alters what one of
these links shows, in this process or another with a different ``PYTHONHASHSEED``.

    python -m tests.app.links_v1            # check the corpus; exit 1 on any difference
    python -m tests.app.links_v1 --write    # recompute every digest, add missing presets

Writing is for a change that is *meant* to alter old links (an engine fix): review the
reported differences, regenerate, and say why in the commit. Links are never removed, and a
link's text is never regenerated — it is kept as it was sent, whatever the encoder does now.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.datastructures import QueryParams

from app.views.links import make_link, parse_params
from engine.policies import POLICIES
from engine.presets import PRESETS
from engine.syntax import format_command, parse
from engine.trace import replay, trace_to_json

CORPUS = Path(__file__).resolve().parents[1] / "data" / "links_v1.txt"

HEADER = """\
# cowlab v=1 links, each with the sha256 of the trace it must show.
#
# A shared link never expires (DESIGN.md §5): tests/app/test_links_v1.py replays every link
# below and fails if the trace it shows has changed. The digest is sha256 of the canonical
# JSON (sort_keys, no spaces, UTF-8) of engine.trace.trace_to_json for the link's scenario
# under the link's policy.
#
# REGENERATING THIS FILE IS A DELIBERATE, REVIEWED ACT. Do it only for a change that is meant
# to alter what old links show (an engine fix), after reading which links changed:
#     python -m tests.app.links_v1            # lists the links whose trace changed
#     python -m tests.app.links_v1 --write    # recomputes the digests, adds new presets
# and say in the commit why those links now show something else. Never edit a link's text:
# it stands for a link someone has already shared.
#
# <sha256 of the trace> <steps> <link>
"""

# Scenarios written by hand for what presets do not exercise: every command form of DESIGN.md
# §2 with every option, the odd names the grammar allows, comments, CRLF and blank lines.
EVERY_COMMAND_FORM = """\
file F filedata
file cfg v1.2:3+4-5_6
P mmap a b c
P mmap f file=F
P mmap g file=F shared
P mmap h file=cfg ro
P mmap k file=F shared ro
P read a
P write a
P write b v.1:2+3-4_5
P read f
P write g shared-write
P fork C
C dontfork c
C dofork c
P dontneed b
P mprotect a ro
P mprotect a rw
P clear-softdirty
P swapout a
P read a
P uffd-wp b on
P write b wp
P uffd-wp b off
P vmsplice a
P vmsplice a as pipe
P get a ro
P get a rw as gup wrong-side-ok
P pin a ro
P pin a rw longterm fast as dma
P pin c ro longterm fast as rdma wrong-side-ok
P iouring b
P iouring b as io
pipe read
dma write device
dma read
gup release
P forcewrite h forced
P forcewrite h raced race
C munmap a
C read a
C exit
io release
P write c end
"""

ODD_NAMES = """\
# names as long as the grammar allows, with - and _, and names that look like verbs
Abcdefghijklmnop mmap a-b_c zzzzzzzzzzzzzzzz
Abcdefghijklmnop write a-b_c ABCDEFGHIJKLMNOPQRSTUVWXYZ012345
Abcdefghijklmnop fork pin
pin vmsplice a-b_c as pipe
pin munmap a-b_c
Abcdefghijklmnop pin zzzzzzzzzzzzzzzz ro as read
Abcdefghijklmnop write zzzzzzzzzzzzzzzz x
read read
pipe read
X-1 mmap mmap
X-1 write mmap 0
X-1 read mmap
"""

COMMENTS_AND_SEPARATORS = (
    "P mmap a ; P write a one  # a comment; with a semicolon\r\n"
    "\r\n"
    "   # an indented comment line\n"
    "P fork C;;C vmsplice a as pipe;C munmap a\n"
    "P write a\tsecret\t\n"
    "pipe read\n"
)


def _thirty() -> str:
    from app.bench.engine import THIRTY_COMMANDS

    return THIRTY_COMMANDS.strip() + "\n"


def _long() -> str:
    """A long link: 600 commands with values as long as the grammar allows (about 28 KB of
    text, a z: link of a few KB) over 12 processes of 12 pages, so its trace stays small."""
    value = "x" * 28
    lines = ["p0 mmap " + " ".join(f"g{j}" for j in range(12))]
    lines += [f"p0 write g{j} {value}{j:04}" for j in range(12)]
    lines += [f"p0 fork p{i}" for i in range(1, 12)]
    i = 0
    while len(lines) < 600:
        proc, page = f"p{i % 12}", f"g{(i * 7) % 12}"
        lines.append(f"{proc} write {page} {value}{i:04}" if i % 3 else f"{proc} read {page}")
        i += 1
    return "\n".join(lines) + "\n"


def z_form(text: str) -> str:
    """``z:`` + base64url(raw deflate(text)), whatever the length (`encode_scenario` picks)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = packer.compress(text.encode("utf-8")) + packer.flush()
    return "z:" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def commands_only(text: str) -> str:
    """The scenario's commands joined by `;`: how links carried every scenario before comments
    and annotations were kept in links (DESIGN.md §8), so the recorded links are these."""
    return ";".join(format_command(cmd) for cmd in parse(text).commands)


def hand_written() -> list[str]:
    """The hand-written links, made once when the corpus was first written."""
    every = commands_only(EVERY_COMMAND_FORM)
    odd = commands_only(ODD_NAMES)
    thirty = commands_only(_thirty())
    links = []
    for policy in POLICIES:
        links.append(make_link("/", every, policy=policy, step=3))
    links += [
        make_link("/", odd, policy="5.7"),
        make_link("/embed", odd, policy="6.2", step=4),
        # The editor's text as typed: comments, CRLF, tabs, empty commands.
        make_link("/", COMMENTS_AND_SEPARATORS, policy="5.7"),
        "/?v=1&s=" + z_form(COMMENTS_AND_SEPARATORS) + "&policy=5.19",
        "/?v=1&s=" + z_form(thirty) + "&policy=5.9",  # z: although short enough to read
        make_link("/", thirty, policy="5.8-break-cow", step=30),
        make_link("/", commands_only(_long()), policy="5.18", step=999),
        "/?v=1&s=" + z_form(_long()) + "&policy=4.8",
        # Hand-escaped forms a person or another tool may produce.
        "/?v=1&s=P%20mmap%20a%3BP%20write%20a%20old%3BP%20fork%20C%3BC%20vmsplice%20a%20as"
        "%20pipe%3BC%20munmap%20a%3BP%20write%20a%20secret%3Bpipe%20read&policy=5.7",
        "/?v=1&s=P+mmap+a%0AP+write+a+old%0AP+fork+C%0AC+vmsplice+a+as+pipe%0AC+munmap+a"
        "%0AP+write+a+secret%0Apipe+read&policy=5.8-wrong-side-ok",
        "/?s=P+mmap+a;P+write+a+1%2B2;P+read+a&policy=5.19",  # no v: read as v=1
        "/?utm_source=slides&v=1&s=P+mmap+a;P+fork+C;C+write+a&policy=6.2&view=present#top",
        "/export.svg?v=1&s=P+mmap+a;P+pin+a+ro+longterm;P+fork+C;C+write+a&policy=5.9&step=4",
        "/?v=1&s=&policy=6.2",  # the empty machine
    ]
    return links


def preset_links() -> list[str]:
    return [
        make_link("/", commands_only(p.text), policy=policy)
        for p in PRESETS.values()
        for policy in POLICIES
    ]


@dataclass(frozen=True)
class Entry:
    digest: str
    steps: int
    link: str


def trace_digest(link: str) -> tuple[str, int]:
    """(sha256 of the trace, number of commands) that ``link`` shows."""
    query = urlsplit(link).query
    params = parse_params(QueryParams(query))
    if params.policy is None:
        raise ValueError(f"a corpus link names its policy: {link}")
    trace = replay(parse(params.text), params.policy)
    canonical = json.dumps(
        _before_huge_pages(trace_to_json(trace)),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest(), len(trace.steps) - 1


# Fields the state JSON gained with huge pages (docs/huge-pages.md), at the value every small
# page has: left out of the digest, so a link that shows the same small pages keeps its digest
# while a trace that really differs (a huge page, another decision) still changes it.
_HUGE_PAGE_FIELDS: dict[str, tuple[object, ...]] = {
    "folio": (None,),
    "backing": ("base",),
    "rest_pfn": (None,),
    "level": (None, "pte"),
}


def _before_huge_pages(node: object) -> object:
    if isinstance(node, dict):
        return {
            k: _before_huge_pages(v)
            for k, v in node.items()
            if k not in _HUGE_PAGE_FIELDS or v not in _HUGE_PAGE_FIELDS[k]
        }
    if isinstance(node, list):
        return [_before_huge_pages(v) for v in node]
    return node


def read_corpus(path: Path = CORPUS) -> list[Entry]:
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, steps, link = line.split(" ", 2)
            entries.append(Entry(digest, int(steps), link))
    return entries


def write_corpus(entries: list[Entry], path: Path = CORPUS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{e.digest} {e.steps} {e.link}" for e in entries]
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")


def differences(entries: list[Entry]) -> list[str]:
    """One line per link whose trace is not the recorded one."""
    out = []
    for entry in entries:
        digest, steps = trace_digest(entry.link)
        if (digest, steps) != (entry.digest, entry.steps):
            out.append(
                f"{entry.link}\n    recorded {entry.digest} ({entry.steps} steps)\n"
                f"    now      {digest} ({steps} steps)"
            )
    return out


def main(argv: list[str]) -> int:
    existing = read_corpus() if CORPUS.exists() else []
    changed = differences(existing)
    known = {e.link for e in existing}
    missing = [link for link in [*preset_links(), *hand_written()] if link not in known]
    if "--write" not in argv:
        for line in changed:
            print(line)
        for link in missing:
            print(f"not in the corpus: {link}")
        print(f"{len(existing)} links, {len(changed)} changed, {len(missing)} missing")
        return 1 if changed else 0
    entries = [Entry(*trace_digest(e.link), e.link) for e in existing]
    entries += [Entry(*trace_digest(link), link) for link in missing]
    write_corpus(entries)
    print(f"wrote {CORPUS}: {len(entries)} links ({len(changed)} changed, {len(missing)} added)")
    for line in changed:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
