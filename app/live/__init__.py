"""Live class sessions (DESIGN.md §9): a teacher's view followed by students' pages.

The rest of cowlab keeps no per-user state; a live room is the one exception, and it lives
behind a broker (`app.live.broker`): in the worker's memory when there is one worker, in Redis
when there are several. ``rooms`` holds the room's data and rules, ``polls`` the engine-derived
questions, ``routes`` the pages, the JSON API and the event stream, ``qr`` the projector's code.
"""
