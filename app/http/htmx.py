"""The htmx request headers, read in one place (after django-htmx's ``HtmxDetails``).

htmx 4 sends ``HX-Request: true`` on every request it makes, including a history restore
(Back/Forward), which targets ``<body>`` and therefore announces ``HX-Request-Type: full``. So
"htmx asked" is not the same as "htmx wants a fragment": only a partial request gets a block.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request


@dataclass(frozen=True, slots=True)
class HtmxDetails:
    request: bool
    request_type: str  # "partial" | "full" | "" (not an htmx request)
    target: str  # `tag#id` in htmx 4, e.g. "div#stage"; "" when absent
    history_restore: bool

    @property
    def partial(self) -> bool:
        """True when the response should be a fragment swapped into ``target``."""
        return self.request and self.request_type != "full" and not self.history_restore

    @property
    def target_id(self) -> str:
        """The id part of ``HX-Target`` (htmx 4 sends `tag#id`, htmx 2 sent the bare id)."""
        return self.target.rpartition("#")[2]


def htmx_details(request: Request) -> HtmxDetails:
    # One pass over the raw headers (ASGI names are lower-case bytes): every step request
    # asks, and four lookups through `request.headers` scan the list four times.
    hx = {
        name: value.decode("latin-1")
        for name, value in request.scope["headers"]
        if name.startswith(b"hx-")
    }
    return HtmxDetails(
        request=hx.get(b"hx-request") == "true",
        request_type=hx.get(b"hx-request-type", ""),
        target=hx.get(b"hx-target", ""),
        history_restore=hx.get(b"hx-history-restore-request") == "true",
    )
