"""`/reference`: the verbs of the scenario language and a glossary, for students and teachers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.http.render import render_page
from app.views.reference import GLOSSARY, OTHER_LINES, PROCESS_VERBS, REFERENCE_VERBS

router = APIRouter()


@router.get(
    "/reference",
    response_class=HTMLResponse,
    summary="The scenario verbs and a glossary of the kernel words the page uses",
)
async def reference(request: Request) -> HTMLResponse:
    context = {
        "request": request,
        "page": "reference",
        "view": "normal",
        "error": None,
        "nav": {"home": "/", "compare": "/compare"},
        "policy_param": "latest",
        "share_url": "",
        "process_verbs": PROCESS_VERBS,
        "reference_verbs": REFERENCE_VERBS,
        "other_lines": OTHER_LINES,
        "glossary": GLOSSARY,
    }
    return HTMLResponse(render_page("reference.html", context))
