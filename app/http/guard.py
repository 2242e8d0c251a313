"""Size limits at the door: a request too large to be a cowlab request is refused before work.

The limits of DESIGN.md §7 are checked where the data is understood — the link decoder bounds
``s`` and its decompression, the parser bounds commands, processes, pages and references, the
API model bounds its fields. This middleware adds the bounds that have to hold *before* any of
that runs, so that no route, query parser or JSON decoder ever holds more than a legal request
can need:

- the query string: a legal link carries at most 16 KB of scenario in ``s``; percent-escaping
  can triple that, plus a few short parameters → ``414 URI Too Long`` beyond `MAX_QUERY_BYTES`
  (uvicorn itself drops request lines past 64 KB with a bare 400);
- the request body: the API's models allow 64 K characters of scenario, and the most
  wasteful legal encoding of one character takes 12 bytes (a surrogate pair of ``\\uXXXX`` in
  JSON, four ``%XX`` in a form) → ``413 Content Too Large`` beyond `MAX_BODY_BYTES` (1 MiB), at
  once when ``Content-Length`` says so, else as soon as the received bytes cross it. A body
  under it that breaks a model's bounds is the model's to refuse (422);
- the request headers → ``431`` beyond `MAX_HEADER_BYTES` (browsers send a few KB).

The refusal says which limit in the form the client reads: a JSON problem under ``/api/``
(the API's own shape), an HTML page (which htmx can also swap) everywhere else.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.render import render_error_page
from app.views.errors import ErrorView
from engine.limits import MAX_DECOMPRESSED_BYTES, MAX_LINK_SCENARIO_BYTES

MAX_QUERY_BYTES = 3 * MAX_LINK_SCENARIO_BYTES + 4096
MAX_BODY_BYTES = 1024 * 1024  # > 12 bytes × 64 K characters: every body a model may accept
MAX_HEADER_BYTES = 32 * 1024


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body without a (truthful) length crosses the limit.

    An `HTTPException`, so FastAPI's body reader lets it through unchanged and the
    application's own handler answers it (JSON for the API, a page elsewhere).
    """

    def __init__(self) -> None:
        super().__init__(413, body_message())


def body_message() -> str:
    return (
        f"the request body is larger than {MAX_BODY_BYTES:,} bytes, more than any scenario of "
        f"at most {MAX_DECOMPRESSED_BYTES:,} characters can take"
    )


def query_message(size: int) -> str:
    return (
        f"the link's query is {size:,} bytes; cowlab reads at most {MAX_QUERY_BYTES:,} "
        f"(a scenario of at most {MAX_LINK_SCENARIO_BYTES:,} bytes in s=, escaped)"
    )


def header_message(size: int) -> str:
    return f"the request headers are {size:,} bytes; cowlab reads at most {MAX_HEADER_BYTES:,}"


_TITLES = {
    413: "This request is larger than cowlab accepts",
    414: "This link is longer than cowlab reads",
    431: "This request's headers are larger than cowlab accepts",
}


def _refusal(scope: Scope, status: int, limit: str, message: str) -> tuple[bytes, bytes]:
    """(content type, body) of the answer to an oversized request."""
    if scope["path"].startswith("/api/"):
        problem = {"detail": {"error": "limit", "limit": limit, "message": message}}
        return b"application/json", json.dumps(problem).encode()
    error = ErrorView(
        status=status,
        title=_TITLES[status],
        message=message[0].upper() + message[1:] + ".",
        text="",
        where=(("limit", limit),),
    )
    return b"text/html; charset=utf-8", render_error_page(Request(scope), error).encode()


class RequestLimits:
    """ASGI middleware: refuse oversized requests before the application reads them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        header_bytes = sum(len(name) + len(value) + 4 for name, value in headers)
        if header_bytes > MAX_HEADER_BYTES:
            await self._refuse(scope, send, 431, "headers", header_message(header_bytes))
            return
        query = len(scope.get("query_string", b""))
        if query > MAX_QUERY_BYTES:
            await self._refuse(scope, send, 414, "query", query_message(query))
            return
        declared = next((value for name, value in headers if name == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            # A length that is not a number is no better: refuse it rather than guess.
            await self._refuse(scope, send, 413, "body", body_message())
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge()
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, limit: str, message: str) -> None:
        content_type, body = _refusal(scope, status, limit, message)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    # The body was not read: the connection cannot carry another request.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
