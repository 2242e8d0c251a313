"""The coordinator ↔ worker channel: one JSON object per SOCK_SEQPACKET message, plus fds.

SEQPACKET keeps message boundaries (no framing code) and, being a Unix socket, carries file
descriptors (SCM_RIGHTS) — how a worker hands a pipe or a gup_test file to the coordinator.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

MAX_MESSAGE = 64 * 1024
MAX_FDS = 4

Message = dict[str, Any]


class ChannelClosed(Exception):
    """The other end went away (the worker died or exited)."""


def pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return a, b


def send(sock: socket.socket, message: Message, fds: list[int] | None = None) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.sendall(data)


def recv(sock: socket.socket) -> tuple[Message, list[int]]:
    """One message and the fds that came with it (the caller owns and must close them)."""
    data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    if not data:
        for fd in fds:
            os.close(fd)
        raise ChannelClosed("channel closed")
    message = json.loads(data)
    if not isinstance(message, dict):
        for fd in fds:
            os.close(fd)
        raise ValueError("malformed message")
    return message, list(fds)
