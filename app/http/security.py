"""Security headers on every response, as a plain ASGI middleware (no per-request task hop).

The page runs only its own scripts and styles (`script-src 'self'`, `style-src 'self'`): no
inline script, no inline event handler, no inline style; the SVG is styled by presentation
attributes and classes, which CSP does not govern. Only ``/embed`` may be framed, because it
exists to sit inside slides and course pages on other sites.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BASE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
DENY_HEADERS = [
    *_COMMON,
    (b"content-security-policy", (_BASE_CSP + "; frame-ancestors 'none'").encode()),
    (b"x-frame-options", b"DENY"),
]
EMBED_HEADERS = [
    *_COMMON,
    (b"content-security-policy", (_BASE_CSP + "; frame-ancestors *").encode()),
]


def frameable(path: str) -> bool:
    return path == "/embed" or path.startswith("/embed/")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = EMBED_HEADERS if frameable(scope["path"]) else DENY_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
