"""Links that never break (DESIGN.md §5): every v=1 link of the corpus shows what it showed.

The corpus (tests/data/links_v1.txt) and how to regenerate it — deliberately, after review —
are described in tests/app/links_v1.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from tests.app.conftest import html
from tests.app.links_v1 import CORPUS, differences, preset_links, read_corpus

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = read_corpus()


def test_the_corpus_says_that_regenerating_it_is_a_reviewed_act() -> None:
    header = CORPUS.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert "REGENERATING THIS FILE IS A DELIBERATE, REVIEWED ACT" in header
    assert len(ENTRIES) == len({e.link for e in ENTRIES}), "each link once"


def test_every_old_link_shows_the_trace_it_always_showed() -> None:
    changed = differences(ENTRIES)
    assert not changed, (
        f"{len(changed)} shared link(s) now show a different trace. If the change is meant, "
        "review them and regenerate: python -m tests.app.links_v1 --write\n" + "\n".join(changed)
    )


def test_every_preset_under_every_policy_is_in_the_corpus() -> None:
    known = {e.link for e in ENTRIES}
    missing = [link for link in preset_links() if link not in known]
    assert not missing, (
        "presets without a recorded link (add them: python -m tests.app.links_v1 --write):\n"
        + "\n".join(missing)
    )


@pytest.mark.parametrize("seed", ["0", "4242"])
def test_the_traces_are_the_same_in_a_process_with_another_hash_seed(seed: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.app.links_v1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"{len(ENTRIES)} links, 0 changed" in done.stdout


def test_every_old_link_is_still_served(client: TestClient) -> None:
    for entry in ENTRIES:
        parts = urlsplit(entry.link)
        r = client.get(f"{parts.path}?{parts.query}")
        assert r.status_code == 200, entry.link
        if parts.path == "/export.svg":
            assert r.headers["content-type"].startswith("image/svg+xml")
        else:
            assert html(r.text).css_first(".problem") is None, entry.link
