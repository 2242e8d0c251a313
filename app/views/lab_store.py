"""The sweep, computed once per deployment and shared by every worker (DESIGN.md §11, §7
``lab_rss_mb``).

A sweep depends only on the engine (its rules, knobs and presets), so it is stored under a key
made of the engine's source: ``lab-sweep-KEY.json`` is the document `cowlab lab sweep --json`
prints (served as it is), and ``lab-sweep-KEY.bits`` the per-point verdict counts as bit-sliced
planes (a few MB), which the page's design filter reads. The first worker that needs them takes
a file lock and runs ``cowlab lab sweep --store DIR`` as a child process, so the sweep's peak
memory is the child's, never a worker's; the others wait on the lock and read the files. Both
files are written under temporary names and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

import engine
from engine.sweep import Space, Sweep, clean_sets, popcount, set_bits, sweep_json
from engine.verdicts import VERDICT_KINDS

CACHE_ENV = "COWLAB_CACHE_DIR"
_MAGIC = b"cowlab-sweep-bits 1\n"


def cache_dir() -> Path:
    """``$COWLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/cowlab``, else ``~/.cache/cowlab``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cowlab"


@functools.cache
def engine_key() -> str:
    """A digest of every engine source file: a sweep stored under it was computed by this
    engine (rules, knobs, presets) and no other."""
    root = Path(engine.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _paths(directory: Path, key: str) -> tuple[Path, Path, Path]:
    stem = directory / f"lab-sweep-{key}"
    return Path(f"{stem}.json"), Path(f"{stem}.bits"), Path(f"{stem}.lock")


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store(sweep: Sweep, directory: Path, key: str | None = None) -> dict[str, Any]:
    """Write the sweep's document and counters under ``directory``; returns the document."""
    doc = sweep_json(sweep)
    directory.mkdir(parents=True, exist_ok=True)
    doc_path, bits_path, _ = _paths(directory, key or engine_key())
    size = (sweep.space.size + 7) // 8
    planes = {
        f"count:{kind}:{i}": plane
        for kind, kind_planes in sweep.kind_counters().items()
        for i, plane in enumerate(kind_planes)
    }
    planes |= {f"clean:{b}": bits for b, bits in clean_sets(sweep).items()}
    header = {"size": sweep.space.size, "planes": list(planes)}
    body = b"".join(plane.to_bytes(size, "little") for plane in planes.values())
    _write_atomically(bits_path, _MAGIC + json.dumps(header).encode() + b"\n" + body)
    # The document last: its presence says both are there.
    _write_atomically(doc_path, orjson.dumps(doc))
    return doc


@dataclass(frozen=True, slots=True)
class StoredSweep:
    """A stored sweep as a worker holds it: the document's bytes (served as they are), the
    document, and per verdict kind the bit-sliced count of presets at every point."""

    body: bytes
    doc: Mapping[str, Any]
    space: Space
    counters: Mapping[str, Sequence[int]]
    clean: Mapping[str, int]  # per backing and "all": the clean points

    def matching(self, fixed: Mapping[str, str], clean: bool) -> int:
        """The runnable points with the ``fixed`` choices (and no verdict, if ``clean``)."""
        bits = self.space.runnable
        for knob, choice in fixed.items():
            bits &= self.space.choice[knob][choice]
        if clean:
            bits &= self.clean["all"]
        return bits

    def rows(self, bits: int, limit: int) -> list[tuple[dict[str, str], dict[str, int]]]:
        """The first ``limit`` points of ``bits``: their settings and verdict counts."""
        return [
            (
                self.space.settings(i),
                {k: self.space.count_at(p, i) for k, p in self.counters.items()},
            )
            for i in set_bits(bits, limit)
        ]

    def count(self, bits: int) -> int:
        return popcount(bits)


def is_stored(directory: Path | None = None) -> bool:
    """Whether the sweep of this engine is stored (a worker can load it in a moment)."""
    doc_path, bits_path, _ = _paths(directory or cache_dir(), engine_key())
    return doc_path.exists() and bits_path.exists()


def load(directory: Path, key: str) -> StoredSweep | None:
    doc_path, bits_path, _ = _paths(directory, key)
    try:
        body = doc_path.read_bytes()
        raw = bits_path.read_bytes()
    except FileNotFoundError:
        return None
    if not raw.startswith(_MAGIC):
        return None
    head, _, data = raw[len(_MAGIC) :].partition(b"\n")
    header = json.loads(head)
    space = Space()
    if header["size"] != space.size:
        return None
    size = (space.size + 7) // 8
    # Every kind, even one no preset gives (it has no plane: its count is 0 everywhere).
    counters: dict[str, list[int]] = {kind: [] for kind in VERDICT_KINDS}
    clean: dict[str, int] = {}
    for i, name in enumerate(header["planes"]):
        plane = int.from_bytes(data[i * size : (i + 1) * size], "little")
        what, _, rest = name.partition(":")
        if what == "count":
            counters.setdefault(rest.rsplit(":", 1)[0], []).append(plane)
        else:
            clean[rest] = plane
    return StoredSweep(body, orjson.loads(body), space, counters, clean)


def load_or_compute(directory: Path | None = None, key: str | None = None) -> StoredSweep:
    """The stored sweep, computing it (once, whichever worker gets the lock first) in a child
    process when it is not stored yet. Blocking: call it from a thread, never the event loop."""
    directory = directory or cache_dir()
    key = key or engine_key()
    found = load(directory, key)
    if found is not None:
        return found
    directory.mkdir(parents=True, exist_ok=True)
    _, _, lock_path = _paths(directory, key)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            found = load(directory, key)
            if found is None:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "app.cli.main",
                        "lab",
                        "sweep",
                        "--store",
                        str(directory),
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                    cwd=Path(engine.__file__).parent.parent,
                )
                found = load(directory, key)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if found is None:
        raise RuntimeError(f"the sweep was computed but not stored under {directory}")
    return found
