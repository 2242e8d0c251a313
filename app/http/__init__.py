"""The web application: what turns an HTTP request into a rendered page or a JSON answer.

- `main` — `create_app`, the application factory (and `app`, for `uvicorn app.http.main:app`);
- `guard` (size limits), `security` (security headers), `memo` (the page memo) — ASGI
  middleware in front of every route;
- `htmx` — the htmx request headers, read in one place;
- `render` — the Jinja environment and rendering of a page or of its named blocks;
- `routes` — the hypermedia pages, the JSON API and its documentation.

May import `app.views`, `app.picture`, `app.probe`, `app.live` (features with routes of their
own, mounted by `create_app`), `app.cexport` (the C program and the real code of a step),
`app.paths` and the engine
(tests/app/test_layering.py checks). Outside this package only the CLI's `serve` (by uvicorn's
import string), the probe's web routes, `app.deploy` (the limits nginx must match) and the
benchmarks use it.
"""
