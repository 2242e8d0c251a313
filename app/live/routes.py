"""Live sessions over HTTP (DESIGN.md §9), one router for `create_app`:

- ``POST /live`` (the "Go live" button) and ``POST /api/v1/live`` make a room from a link;
- ``/live`` joins by code, ``/live/{code}`` is a student's page, ``/live/{code}/teach`` the
  teacher's, ``/live/{code}/screen`` the projector's join screen with the QR code (`pages`);
- ``/live/{code}/events`` streams the room's events (`stream`);
- ``/api/v1/live/{code}/…`` reads and changes the room (`api`).
"""

from __future__ import annotations

from fastapi import APIRouter

from app.live import api, pages, stream

router = APIRouter()
router.include_router(api.router)
router.include_router(stream.router)
router.include_router(pages.router)
