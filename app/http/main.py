"""The FastAPI application: routers, static files, security headers, HTML error pages."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Match, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.guard import RequestLimits
from app.http.heavy import share_the_gil
from app.http.memo import PageMemo, ResponseMemo
from app.http.render import render_error_page
from app.http.routes import api, docs, lab, lessons, offline, pages, realcode, reference
from app.http.security import DENY_HEADERS, EMBED_HEADERS, SecurityHeaders, frameable
from app.live import lifespan as live_lifespan
from app.live import routes as live
from app.live.broker import BrokerUnavailable
from app.live.control import broker_down
from app.paths import STATIC_DIR
from app.probe import web as probe_web
from app.probe.gate import ProbeSettings
from app.views.errors import ErrorView, not_found, server_error
from app.views.runs import RunMemo

VERSION = "0.1.0"


class CachedStatic(StaticFiles):
    """Static files with a cache policy: vendored files are versioned by name, so immutable."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            immutable = path.startswith("vendor/")
            response.headers["Cache-Control"] = (
                "public, max-age=31536000, immutable" if immutable else "public, max-age=300"
            )
        return response


# Pages may be kept briefly by browsers and proxies: a link's page is a pure function of the
# link, but `latest` moves to a new era and a deploy changes the markup.
PAGE_CACHE = b"public, max-age=60"
NO_STORE = b"no-store"


def _never_stored(path: str) -> bool:
    """The API's answers and the probe's: computed per request (the probe runs processes)."""
    return path.startswith("/api/") or path == "/probe" or path.startswith("/probe/")


class CachePolicy:
    """ASGI middleware: a ``Cache-Control`` on every answer that has none.

    Errors are never stored (the next request may succeed), nor the API's or the probe's
    answers; pages are cached for `PAGE_CACHE`; static files set their own (`CachedStatic`),
    unless they are errors.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        never = _never_stored(scope["path"])

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if not (name.lower() == b"cache-control" and message["status"] >= 400)
                ]
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    stored = not never and message["status"] < 400
                    headers.append((b"cache-control", PAGE_CACHE if stored else NO_STORE))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_policy)


class HeadAsGet:
    """ASGI middleware: ``HEAD`` answered as ``GET`` without the body (RFC 9110 §9.3.2).

    FastAPI routes serve only the methods they name, so a HEAD of any page was a 405; every
    GET here is safe to run for a HEAD, and the headers (``Content-Length`` included) are the
    GET's.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


class RelativeRedirects:
    """ASGI middleware: a redirect to this server itself is sent as a path (``Location:
    /live``), never as ``http://host/live``. Behind a proxy the host the app sees may lack the
    port or the scheme the visitor used; a path keeps whatever the browser used (RFC 9110
    §10.2.2 allows a relative reference). Starlette's slash redirects are absolute."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope["headers"]).get(b"host", b"")

        async def send_relative(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                message["headers"] = [
                    (name, _relative(value, host) if name.lower() == b"location" else value)
                    for name, value in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, send_relative)


def _relative(location: bytes, host: bytes) -> bytes:
    for scheme in (b"http://", b"https://"):
        own = scheme + host
        if host and location.startswith(own) and location[len(own) : len(own) + 1] in (b"/", b""):
            return location[len(own) :] or b"/"
    return location


def _error_page(request: Request, error: ErrorView) -> HTMLResponse:
    return HTMLResponse(render_error_page(request, error), status_code=error.status)


def _allowed_methods(request: Request) -> str:
    """Every method any route serves at this path.

    Starlette answers a 405 from the first route whose path matches, so a path served by two
    routes (GET and POST of /api/v1/probe) would announce only one of them in `Allow`.
    """
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE:
            methods.update(route.methods or ())
    return ", ".join(sorted(methods))


def create_app(probe: ProbeSettings | None = None) -> FastAPI:
    """The application; ``probe`` is whether and for whom it runs scenarios on this kernel,
    by default what `cowlab serve` handed this worker process (`ProbeSettings.from_environ`)."""
    app = FastAPI(
        title="cowlab",
        version=VERSION,
        description="Linux copy-on-write page sharing, replayed under eleven kernel policy eras.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=live_lifespan.lifespan,
        # cowlab exports no telemetry. On by default, FastAPI's native OpenTelemetry asks on
        # every request whether global providers were set up (environment lookups): 40% of a
        # step the page memo answers, which is what a class on one link costs (issue 23).
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.live = live_lifespan.configure()
    # The app's only memos (DESIGN.md §7: each earns its place with a figure, see app.http.memo
    # and app.views.runs); `app.state.memos` lists them so a benchmark can start truly cold.
    app.state.runs = RunMemo()
    app.state.pages = PageMemo()
    app.state.memos = (app.state.runs, app.state.pages)
    if app.state.live.broker is not None:
        app.state.live.broker.runs = app.state.runs
    app.include_router(pages.router)
    app.include_router(lessons.router)
    app.include_router(api.router)
    app.include_router(docs.router)
    app.include_router(lab.router)
    app.include_router(reference.router)
    app.include_router(realcode.router)
    app.include_router(offline.router)
    app.include_router(live.router)
    # "Run on this server's kernel" (app.probe.web): off unless `cowlab serve` enabled it.
    app.state.probe = probe if probe is not None else ProbeSettings.from_environ()
    app.include_router(probe_web.router)
    app.mount("/static", CachedStatic(directory=STATIC_DIR), name="static")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # JSON for the API, a page (that htmx can also swap) for everything else;
        # exc.headers carries what the status requires (e.g. `Allow` with a 405).
        response: Response
        if request.url.path.startswith("/api/"):
            # The same shape as the API's own problems (`Problem`), e.g. a body that is not JSON.
            problem = {"error": "request", "message": str(exc.detail)}
            response = JSONResponse({"detail": problem}, status_code=exc.status_code)
        elif exc.status_code == 404:
            response = _error_page(request, not_found(request.url.path))
        else:
            error = ErrorView(
                status=exc.status_code,
                title="This request cannot be served",
                message=str(exc.detail),
                text="",
            )
            response = _error_page(request, error)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = _allowed_methods(request)
        return response

    @app.exception_handler(BrokerUnavailable)
    async def live_store_down(request: Request, exc: BrokerUnavailable) -> Response:
        # Redis restarting: a 503 with a retry (the room comes back with it), never a 500.
        refused = broker_down(str(exc))
        return refused.json() if request.url.path.startswith("/api/") else refused.page(request)

    @app.exception_handler(500)
    async def server_failure(request: Request, exc: Exception) -> Response:
        # Starlette answers an unhandled exception from its outermost layer, outside every
        # middleware added here: this page says so without a traceback, and carries the
        # security headers itself. The exception is still raised to the server's log.
        response: Response
        if request.url.path.startswith("/api/"):
            problem = {"error": "server", "message": "cowlab failed while answering this request"}
            response = JSONResponse({"detail": problem}, status_code=500)
        else:
            response = _error_page(request, server_error())
        extra = EMBED_HEADERS if frameable(request.url.path) else DENY_HEADERS
        for name, value in (*extra, (b"cache-control", NO_STORE)):
            response.headers[name.decode()] = value.decode()
        return response

    # Compression keeps the first page load (page + CSS + JS + htmx) under 100 KB on the wire.
    # Level 3: a 60 KB fragment compresses in 0.5 ms instead of 2 ms at level 6, 12% larger.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=3)
    # Outside compression, so a memo hit is sent as it was compressed the first time.
    app.add_middleware(ResponseMemo, memo=app.state.pages)
    # Oversized requests are refused before anything reads them (but with security headers).
    app.add_middleware(RequestLimits)
    app.add_middleware(CachePolicy)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HeadAsGet)
    app.add_middleware(RelativeRedirects)
    share_the_gil()  # the worker's loop stays responsive while a heavy request runs
    return app


app = create_app()
