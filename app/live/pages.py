"""The live pages: Go live, join by code, a student's and the teacher's room, the projector's
join screen. The room pages show the followed view inside them (static/live.js)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.http.render import render_page
from app.http.routes.lessons import lesson_cards
from app.live.control import (
    NO_STORE,
    TEACHER_COOKIE,
    Refused,
    admit,
    broker_of,
    find_room,
    html_refusals,
    join_url,
    seat_free,
    start_room,
    teacher_key,
)
from app.live.qr import qr_svg
from app.live.rooms import MAX_LINK_CHARS, key_matches, room_link

router = APIRouter()


# The countdown the teacher's button starts on a poll: long enough to read four choices on a
# phone, short enough to keep a lecture moving.
COUNTDOWN_SECONDS = 30
COUNTDOWN_CHOICES = (10, 20, 30, 60, 120)


def _page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    context = {
        "request": request,
        "page": "live",
        "view": "present" if request.query_params.get("view") == "present" else "normal",
        "error": None,
        "nav": {"home": "/", "compare": "/compare"},
        "policy_param": "latest",
        "share_url": "",
        **values,
    }
    return HTMLResponse(render_page(template, context), status_code=status, headers=NO_STORE)


@router.get(
    "/live",
    response_class=HTMLResponse,
    summary="Join a live session by its code",
    responses={303: {"description": "To the room's page."}, **html_refusals(404, 429, 503)},
)
async def join(request: Request, code: str | None = None) -> Response:
    message = ""
    status = 200
    if code is not None:
        try:
            room = await find_room(request, broker_of(request), code)
            return RedirectResponse(f"/live/{room.code}", status_code=303)
        except Refused as exc:
            message, status = exc.message, exc.status
    return _page(request, "live_join.html", status, message=message, typed=(code or "")[:12])


@router.post(
    "/live",
    response_class=RedirectResponse,
    summary='Start a live session from a view (the page\'s "Go live" button)',
    description="Answers 303 to the teacher's page and keeps the teacher's key in a cookie. "
    "Without `link`, the page the request came from (`Referer`).",
    status_code=303,
    responses=html_refusals(400, 429, 503),
)
async def start(
    request: Request,
    link: Annotated[str, Form(max_length=MAX_LINK_CHARS)] = "",
) -> Response:
    # live.js puts the address bar's link in the form as it is sent (htmx moves the address
    # bar without redrawing the header); without scripts the browser's Referer names the
    # page the button was on (same origin: `Referrer-Policy: same-origin` sends it whole).
    link = link or request.headers.get("referer", "")[:MAX_LINK_CHARS]
    try:
        room, key = await start_room(request, link)
    except Refused as exc:
        return exc.page(request)
    # A teacher presenting goes on presenting: the room's page opens in presentation mode.
    present = "view=present" in link
    teach = f"/live/{room.code}/teach" + ("?view=present" if present else "")
    response = RedirectResponse(teach, status_code=303)
    broker = broker_of(request)
    response.set_cookie(
        TEACHER_COOKIE + room.code,
        key,
        max_age=int(broker.idle_seconds),
        httponly=True,  # no script reads it: the page's requests carry it
        samesite="strict",  # and no other site's page can make them
        secure=request.url.scheme == "https",
    )
    return response


async def _room_page(request: Request, code: str, role: str) -> HTMLResponse:
    try:
        broker = broker_of(request)
        room = await find_room(request, broker, code)
        if role == "student" and not await seat_free(request, broker, room.code):
            # Said here, on the page: a refused event stream only looks like an ended room.
            raise Refused(429, "full", f"this room already has {broker.max_students} students")
        if role == "teacher" and not key_matches(room, teacher_key(request, room.code)):
            raise Refused(
                403,
                "forbidden",
                f"the teacher's page of room {room.code} opens in the browser that started it",
            )
    except Refused as exc:
        return exc.page(request)
    response = _page(
        request,
        "live_room.html",
        code=room.code,
        role=role,
        link=room_link(room),
        join_url=join_url(request, room.code),
        students=await broker.students(room.code),
        lessons=lesson_cards() if role == "teacher" else (),
        results_csv=f"/api/v1/live/{room.code}/poll.csv",
        countdown_seconds=COUNTDOWN_SECONDS,
        countdown_choices=COUNTDOWN_CHOICES,
    )
    if role == "student":
        await admit(request, response, broker, room.code)
    return response


@router.get(
    "/live/{code}",
    response_class=HTMLResponse,
    summary="A student's page",
    responses=html_refusals(404, 429, 503),
)
async def student_page(request: Request, code: str) -> Response:
    return await _room_page(request, code, "student")


@router.get(
    "/live/{code}/teach",
    response_class=HTMLResponse,
    summary="The teacher's page (in the browser holding the key's cookie)",
    responses=html_refusals(403, 404, 429, 503),
)
async def teacher_page(request: Request, code: str) -> Response:
    return await _room_page(request, code, "teacher")


@router.get(
    "/live/{code}/screen",
    response_class=HTMLResponse,
    summary="The projector's join screen: the code, the link and its QR code",
    responses=html_refusals(404, 429, 503),
)
async def screen_page(request: Request, code: str) -> Response:
    try:
        broker = broker_of(request)
        room = await find_room(request, broker, code)
    except Refused as exc:
        return exc.page(request)
    url = join_url(request, room.code)
    return _page(
        request,
        "live_screen.html",
        code=room.code,
        join_url=url,
        qr=qr_svg(url, f"QR code of {url}"),
        students=await broker.students(room.code),
    )
