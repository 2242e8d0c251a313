"""Share links (DESIGN.md §5): the scenario, policy and step live in the URL, nowhere else.

``s`` holds the scenario. Short scenarios travel readable — commands joined by ``;``, spaces as
``+``; a scenario with comments or annotations keeps them, one line each, ``%0A`` between
lines (DESIGN.md §8; the caller hands over `engine.syntax.canonical_text`) — so a person can
read and edit a link by hand; long ones travel as ``z:`` followed by
base64url(raw deflate(text)). Every link carries ``v=1``; a later format must keep this decoder.

Decoding is bounded before any work is done: ``s`` may be at most 16 KB as sent, and
decompression stops at 64 KB of output (``max_length``), so a crafted deflate stream (a "zip
bomb") costs the server 64 KB, not gigabytes.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote_plus

from engine.limits import MAX_DECOMPRESSED_BYTES, MAX_LINK_SCENARIO_BYTES

LINK_VERSION = "1"
# Beyond this many characters (after URL escaping) the readable form stops being readable, and
# some chat tools and projectors' browsers truncate long URLs: switch to the compressed form.
READABLE_LIMIT = 1500
Z_PREFIX = "z:"
# Characters a URL query may carry literally (RFC 3986 sub-delims and pchar) that appear in
# scenario text; keeping them unescaped is what makes `s=P+mmap+a;P+fork+C` readable.
_SAFE = ";:=,/"
_ALWAYS_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
# quote_plus(c, safe=_SAFE) of every ASCII character, for `str.translate`.
_ASCII_QUOTED = {
    code: (
        chr(code) if chr(code) in _ALWAYS_SAFE + _SAFE else "+" if code == 32 else f"%{code:02X}"
    )
    for code in range(128)
}


def quote_scenario(text: str) -> str:
    """``quote_plus(text, safe=";:=,/")``, the same characters, but in one C call for ASCII
    text: urllib quotes byte by byte in Python, and a step's links quote the scenario several
    times (a fifth of a cold step for a preset, issue 23's profile)."""
    if text.isascii():
        return text.translate(_ASCII_QUOTED)
    return quote_plus(text, safe=_SAFE)


View = Literal["normal", "present"]


class LinkError(ValueError):
    """A link the server cannot read: which parameter, and what is wrong with it.

    ``status`` is the HTTP status of the page that says so: 400 for a link that does not
    read, 414 for an ``s`` longer than links carry, 413 for a ``z:`` form that expands beyond
    the scenario limit.
    """

    def __init__(self, param: str, message: str, status: int = 400) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message
        self.status = status


def _deflate(text: str) -> bytes:
    # Raw deflate (wbits -15): no zlib header or checksum, 6 bytes shorter than zlib.compress.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(text.encode("utf-8")) + compressor.flush()


def encode_scenario(text: str) -> str:
    """The ``s`` value for ``text``: readable when short enough, else the ``z:`` form."""
    # Text that itself starts with "z:" (never valid scenario syntax, but a user may type it)
    # must not be mistaken for the compressed form, so it always travels compressed.
    if text.startswith(Z_PREFIX):
        return _compressed(text)
    # URL escaping makes an ASCII character at most three: short ASCII text needs no measuring.
    if text.isascii() and 3 * len(text) <= READABLE_LIMIT:
        return text
    if len(quote_scenario(text)) <= READABLE_LIMIT:
        return text
    return _compressed(text)


def _compressed(text: str) -> str:
    packed = base64.urlsafe_b64encode(_deflate(text)).rstrip(b"=").decode("ascii")
    return Z_PREFIX + packed


def decode_scenario(s: str) -> str:
    """The scenario text carried by an ``s`` value (already URL-unescaped by the framework)."""
    if len(s.encode("utf-8")) > MAX_LINK_SCENARIO_BYTES:
        raise LinkError(
            "s",
            f"the scenario in the link is {len(s.encode('utf-8')):,} bytes; "
            f"links carry at most {MAX_LINK_SCENARIO_BYTES:,}",
            414,
        )
    if not s.startswith(Z_PREFIX):
        return s
    payload = s[len(Z_PREFIX) :]
    try:
        # validate=True: a character outside the alphabet is an error, not silently skipped.
        data = base64.b64decode(payload + "=" * (-len(payload) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LinkError("s", "the z: form is not base64url (was the link cut short?)") from exc
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(data, MAX_DECOMPRESSED_BYTES)
    except zlib.error as exc:
        raise LinkError("s", "the z: form is not deflate data (was the link cut short?)") from exc
    if inflater.unconsumed_tail:
        raise LinkError(
            "s", f"the z: form expands beyond {MAX_DECOMPRESSED_BYTES:,} bytes of scenario", 413
        )
    if not inflater.eof:
        raise LinkError("s", "the z: form ends early (was the link cut short?)")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LinkError("s", "the z: form does not hold UTF-8 text") from exc


@dataclass(frozen=True, slots=True)
class LinkParams:
    """What a request's query string asks for, decoded but not yet replayed."""

    text: str = ""
    policy: str | None = None
    step: int | None = None
    view: View = "normal"
    policies: tuple[str, ...] | None = None


def parse_params(query: Mapping[str, str]) -> LinkParams:
    """Decode ``v``, ``s``, ``policy``, ``step``, ``view`` and ``policies`` of a link.

    Raises `LinkError` naming the parameter for anything that cannot be read; whether the policy
    exists and the step is in range is for the caller, who has the engine.
    """
    version = query.get("v") or LINK_VERSION
    if version != LINK_VERSION:
        raise LinkError(
            "v",
            f"this link is format v={version}, and this cowlab reads v={LINK_VERSION}; "
            "open it with the cowlab that made it",
        )
    text = decode_scenario(query.get("s", ""))
    step: int | None = None
    raw_step = query.get("step")
    if raw_step not in (None, ""):
        if not raw_step.isdecimal() or len(raw_step) > 7:
            raise LinkError("step", f"expected a step number 0, 1, 2, …, found {raw_step!r}")
        step = int(raw_step)
    policies: tuple[str, ...] | None = None
    raw_policies = query.get("policies")
    if raw_policies:
        # Each id once: a link repeating ids must not make the server replay and draw one
        # column per repetition (a few thousand of them fit in a query).
        named = dict.fromkeys(p.strip() for p in raw_policies.split(",") if p.strip())
        policies = tuple(named) or None
    # `view` is cosmetic: an unknown value must not make a shared link unreadable.
    view: View = "present" if query.get("view") == "present" else "normal"
    return LinkParams(
        text=text,
        policy=query.get("policy") or None,
        step=step,
        view=view,
        policies=policies,
    )


def make_link(
    path: str,
    text: str,
    *,
    policy: str | None = None,
    step: int | None = None,
    view: View = "normal",
    policies: tuple[str, ...] | None = None,
    customs: tuple[str, ...] = (),
) -> str:
    """A share link: ``path?v=1&s=…&policy=…&step=…`` with the scenario in readable or z: form."""
    return at_step(
        link_prefix(path, text, policy=policy, policies=policies, customs=customs), step, view
    )


def link_prefix(
    path: str,
    text: str,
    *,
    policy: str | None = None,
    policies: tuple[str, ...] | None = None,
    customs: tuple[str, ...] = (),
) -> str:
    """The part of a link that names the scenario and policy; `at_step` completes it.
    ``customs`` are the custom lab points of `/compare`, one ``custom=`` each (DESIGN.md §11).

    Encoding the scenario is the costly part of a link, and a page holds dozens of links that
    differ only in their step: it encodes once and appends the step to this prefix.
    """
    parts = [f"v={LINK_VERSION}"]
    if text:
        parts.append("s=" + quote_scenario(encode_scenario(text)))
    if policies is not None:
        parts.append("policies=" + quote_plus(",".join(policies), safe=","))
    parts.extend("custom=" + quote_plus(c, safe=":=,") for c in customs)
    if policy is not None:
        parts.append("policy=" + quote_plus(policy))
    return path + "?" + "&".join(parts)


def at_step(prefix: str, step: int | None, view: View = "normal") -> str:
    """``prefix`` (from `link_prefix`) at ``step`` in ``view``: the same link `make_link` makes."""
    if step is not None:
        prefix += f"&step={step}"
    if view == "present":
        prefix += "&view=present"
    return prefix
