"""`/docs`: the API documentation, drawn from the app's own OpenAPI schema.

FastAPI's Swagger UI and ReDoc pages load their scripts from a CDN and run inline scripts; both
break the page's promise (no other host, `script-src 'self'`). The schema itself stays at
``/openapi.json`` for tools; this page renders the same schema as plain HTML.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.http.render import render_page
from app.http.routes.api import EXAMPLE

router = APIRouter()


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    summary: str
    description: str
    params: tuple[tuple[str, str], ...]
    body: str  # example request body, JSON
    responses: tuple[tuple[str, str], ...]


def operations(schema: dict[str, Any]) -> tuple[Operation, ...]:
    ops: list[Operation] = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            params = tuple((p["name"], p.get("description", "")) for p in op.get("parameters", []))
            body = ""
            if "requestBody" in op:
                body = json.dumps({"scenario": EXAMPLE, "policy": "5.7"}, indent=2)
            responses = tuple(
                (code, r.get("description", "")) for code, r in op.get("responses", {}).items()
            )
            ops.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    summary=op.get("summary", ""),
                    description=op.get("description", ""),
                    params=params,
                    body=body,
                    responses=responses,
                )
            )
    return tuple(ops)


@router.get("/docs", response_class=HTMLResponse, summary="This API documentation")
async def docs(request: Request) -> HTMLResponse:
    schema = request.app.openapi()
    ctx = {
        "request": request,
        "page": "docs",
        "view": "normal",
        "error": None,
        "nav": {"home": "/", "compare": "/compare"},
        "title": schema["info"]["title"],
        "version": schema["info"]["version"],
        "operations": operations(schema),
        "base": str(request.base_url).rstrip("/"),
    }
    return HTMLResponse(render_page("docs.html", ctx))
