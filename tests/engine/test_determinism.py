"""The same scenario gives the same trace in a fresh interpreter, whatever the hash seed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from engine.presets import PRESETS
from engine.trace import replay, trace_to_json

ROOT = Path(__file__).resolve().parents[2]

DIGEST_SCRIPT = """
import hashlib, json, sys
from engine.presets import PRESETS
from engine.trace import replay, trace_to_json
h = hashlib.sha256()
for preset in PRESETS.values():
    for policy in ("4.8", "5.8-break-cow", "5.9", "6.2"):
        h.update(json.dumps(trace_to_json(replay(preset.text, policy)), sort_keys=True).encode())
print(h.hexdigest())
"""


def local_digest() -> str:
    h = hashlib.sha256()
    for preset in PRESETS.values():
        for policy in ("4.8", "5.8-break-cow", "5.9", "6.2"):
            trace = trace_to_json(replay(preset.text, policy))
            h.update(json.dumps(trace, sort_keys=True).encode())
    return h.hexdigest()


def test_traces_are_identical_across_processes_and_hash_seeds() -> None:
    digests = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", DIGEST_SCRIPT],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        digests.add(out.stdout.strip())
    assert digests == {local_digest()}
