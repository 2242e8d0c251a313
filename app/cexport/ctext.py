"""Text into C: string literals and comments that no scenario text can break out of."""

from __future__ import annotations

import re


def c_string(text: str) -> str:
    """``text`` as a C string literal: printable ASCII as itself, every other byte of its UTF-8
    as an octal escape (three digits at most, so the next character cannot extend it), and
    `?` escaped so no trigraph can form."""
    out = ['"']
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\?':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    out.append('"')
    return "".join(out)


def c_comment(text: str) -> str:
    """``text`` safe inside a /* */ comment: no comment end, no comment start (-Wcomment), no
    control character, and no trigraph: C11 (`-std=c11`) replaces them even in comments, and a
    `??/` at a line's end is a backslash that splices the next line in, which gcc's -Wall
    (-Wtrigraphs) reports. A `\\` between two `?` keeps them apart."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    text = re.sub(r"\?(?=\?)", "?\\\\", text)
    return text.replace("*/", "*\\/").replace("/*", "/\\*")
