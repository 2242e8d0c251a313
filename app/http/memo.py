"""A memo of rendered pages, as ASGI middleware in front of the whole application.

A page is a pure function of its URL, the host (the absolute share link names it), the htmx
headers that pick a fragment, and whether the client takes gzip (DESIGN.md §1: the link holds
all state and the engine is deterministic). So a response can be kept and sent again: when a
class of thirty opens the teacher's link and steps through it, each step is rendered once.
Sitting in front of routing, a hit costs no more than a static file.

This is not per-user state: every worker may hold a different subset, or none, and gives the
same answers. Only GETs of the page routes are kept, and only complete 200/303 responses.

It earns its place with ``class_ratio`` (DESIGN.md §7: a class on one link ≥ 2 × a constant
body): measured without it, 0.21 × (every student's step rendered again); with it, 1.8–3.1 ×
on a loaded 2-core machine (docs/benchmarks.md). Bounded by `MAX_ENTRIES` and `MAX_BYTES`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.probe.gate import PROXY_HEADERS

MAX_ENTRIES = 512
MAX_BYTES = 48 * 1024 * 1024  # a bound on memory whatever the size of the scenarios
PAGES = frozenset({"/", "/compare", "/embed", "/presets", "/export.svg", "/steps"})
# The request headers a page's bytes depend on (besides the URL).
KEY_HEADERS = (
    b"host",
    b"hx-request",
    b"hx-request-type",
    b"hx-target",
    b"hx-history-restore-request",
)

# Whether a proxy relayed the request changes the page (the kernel probe's button is offered only
# to direct visitors, `app.probe.gate`), so it is part of the key.
RELAY_HEADERS = tuple(name.encode() for name in PROXY_HEADERS)

Key = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Stored:
    start: Message
    body: bytes


def request_key(scope: Scope) -> Key | None:
    """The memo key of a request, or None when it must not be served from the memo."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in PAGES:
        return None
    headers = dict(scope["headers"])
    gzip = b"gzip" in headers.get(b"accept-encoding", b"")
    return (
        scope["scheme"],
        scope["path"],
        scope["query_string"],
        gzip,
        any(name in headers for name in RELAY_HEADERS),
        *(headers.get(name, b"") for name in KEY_HEADERS),
    )


class PageMemo:
    """Least-recently-used pages, bounded by entries and by bytes; used from the event loop only.

    Owned by the app (``app.state.pages``) and consulted by `ResponseMemo` in front of it.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.entries: OrderedDict[Key, Stored] = OrderedDict()
        self.bytes = 0

    def get(self, key: Key) -> Stored | None:
        stored = self.entries.get(key)
        if stored is not None:
            self.entries.move_to_end(key)
        return stored

    def keep(self, key: Key, stored: Stored) -> None:
        if len(stored.body) > self.max_bytes:
            return
        if key in self.entries:
            self.bytes -= len(self.entries.pop(key).body)
        self.entries[key] = stored
        self.bytes += len(stored.body)
        while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
            _, dropped = self.entries.popitem(last=False)
            self.bytes -= len(dropped.body)

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0


class ResponseMemo:
    """The middleware that answers from a `PageMemo`, and fills it."""

    def __init__(self, app: ASGIApp, memo: PageMemo) -> None:
        self.app = app
        self.memo = memo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = request_key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        stored = self.memo.get(key)
        if stored is not None:
            await send(stored.start)
            await send({"type": "http.response.body", "body": stored.body})
            return

        start: Message | None = None
        chunks: list[bytes] = []
        complete = True

        async def capture(message: Message) -> None:
            nonlocal start, complete
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    complete = False  # streamed: not kept (never the case for our pages)
            await send(message)

        await self.app(scope, receive, capture)
        if start is not None and complete and start["status"] in (200, 303):
            self.memo.keep(key, Stored(start, b"".join(chunks)))
