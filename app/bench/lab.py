"""The policy lab's figures for `cowlab bench` (DESIGN.md §7): ``sweep_s`` and
``custom_column_ms``.

``sweep_s`` is one whole sweep (every knob combination × every preset) in this process;
``custom_column_ms`` the median time to build one presets-grid column for a custom point never
seen before (policy built, every preset replayed, cells made; no memo).
"""

from __future__ import annotations

import itertools
import statistics
import time
from typing import Any

from app.views.lab import custom_column_cells
from engine.policies import POLICIES
from engine.sweep import all_points, refused, run_sweep


def fresh_points(count: int) -> list[str]:
    """``count`` custom ids of distinct runnable points, none of them an era."""
    eras = {tuple(e.knobs.values()) for e in POLICIES.values()}
    base = POLICIES["5.9"]
    ids = []
    for settings in itertools.islice(all_points(), 0, None, 97):
        if refused(settings) or tuple(settings.values()) in eras:
            continue
        changes = [f"{k}={v}" for k, v in settings.items() if v != base.knobs[k]]
        ids.append(",".join(["custom:base=5.9", *changes]))
        if len(ids) == count:
            break
    return ids


def measure_lab(quick: bool) -> dict[str, Any]:
    start = time.perf_counter()
    run_sweep()
    sweep_s = time.perf_counter() - start
    samples = []
    for policy_id in fresh_points(5 if quick else 25):
        start = time.perf_counter()
        custom_column_cells(policy_id)
        samples.append(time.perf_counter() - start)
    return {
        "sweep_s": round(sweep_s, 2),
        "custom_column_ms": round(statistics.median(samples) * 1000, 1),
    }
