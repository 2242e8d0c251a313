"""Kernel policy eras: every decision that differs between eras, and nothing else.

Every decision that differs between eras is a knob (`engine.policies.knobs`), each choice one
class holding its rule, kernel function, commit and why. One module per era (`e5_9.py` is
5.9 – 5.17) holds one `Policy` subclass as ``POLICY`` with its mainline version range and its
knob settings; `base.py` holds the rules every era shares and asks the chosen knob for the rest;
`custom.py` builds the points no era is (``custom:base=ID,KNOB=CHOICE,…``, DESIGN.md §11). The
package finds its eras itself, so adding an era is one new module plus its tests:

1. ``engine/policies/e6_9.py`` (say) subclasses the era it changed, e.g. ``LongtermUnshare62``,
   sets ``id``, ``label``, ``kernels``, ``commits``, ``story``, ``since = (6, 9)`` and
   ``until = None``, sets ``knobs = {**LongtermUnshare62.knobs, KNOB: CHOICE}`` for the
   decisions its commits changed — a rule no era had yet is one more `Choice` class in its
   knob's module, which the lab and the sweep then offer too — and ends with
   ``POLICY = TheClass()``. The previous open-ended era needs no edit: the era with the
   latest ``since`` wins.
2. `POLICIES` lists it in version order, `get_policy` and every page offer it, and
   `policy_for_kernel` (the probe's "which era is this kernel") maps its versions to it;
   ``tests/engine/test_policy_package.py::test_a_new_era_is_one_module`` does exactly this with a
   throwaway module.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from collections.abc import Mapping

from engine.policies.base import Decision, GupRequest, KernelVersion, Outcome, Policy
from engine.policies.custom import Point, build, is_custom, parse
from engine.policies.errors import RefusedCombination, UnknownPolicy

__all__ = [
    "LATEST",
    "POLICIES",
    "Decision",
    "GupRequest",
    "KernelVersion",
    "Outcome",
    "Policy",
    "RefusedCombination",
    "UnknownPolicy",
    "discover",
    "get_policy",
    "policy_for_kernel",
]


# Era modules are e<major>_<minor>[_proposal]; the rest of the package (base, knobs, custom)
# holds what the eras are made of.
_ERA_MODULE = re.compile(r"e\d+_\d+\w*")


def discover(package: str = __name__) -> dict[str, Policy]:
    """Every era module's ``POLICY`` of ``package``, oldest first; a proposal follows the
    merged era it was proposed against."""
    found: list[Policy] = []
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if not _ERA_MODULE.fullmatch(info.name):
            continue
        policy = getattr(importlib.import_module(f"{package}.{info.name}"), "POLICY", None)
        if not isinstance(policy, Policy):
            raise TypeError(f"{package}.{info.name} must define POLICY, a Policy instance")
        found.append(policy)
    found.sort(key=lambda p: (p.since, not p.merged, p.id))
    ids = [p.id for p in found]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two era modules share an id: {ids}")
    return {p.id: p for p in found}


POLICIES: Mapping[str, Policy] = discover()


def policy_for_kernel(
    version: KernelVersion, policies: Mapping[str, Policy] | None = None
) -> Policy:
    """The merged era of a mainline kernel ``version``: of the eras whose declared range covers
    it, the one that starts latest (so a new era cuts the open-ended range before it)."""
    covering = [
        p for p in (POLICIES if policies is None else policies).values() if p.covers(version)
    ]
    if not covering:
        raise UnknownPolicy(f"no era covers kernel {version[0]}.{version[1]}")
    return max(covering, key=lambda p: p.since)


# The newest merged era: the one today's kernels run.
LATEST = policy_for_kernel((999, 0)).id


def get_policy(policy_id: str) -> Policy:
    """The era of ``policy_id`` (or ``latest``), or the custom point a ``custom:`` id names."""
    if is_custom(policy_id):
        return _custom_policy(policy_id)
    if policy_id == "latest":
        policy_id = LATEST
    try:
        return POLICIES[policy_id]
    except KeyError:
        raise UnknownPolicy(
            f"unknown policy {policy_id!r}; expected one of: {', '.join(POLICIES)}, latest, "
            "or custom:base=ID,KNOB=CHOICE,…"
        ) from None


def _custom_policy(policy_id: str) -> Policy:
    point = parse(policy_id, POLICIES)
    return _built(point)


@functools.lru_cache(maxsize=256)
def _built(point: Point) -> Policy:
    """One policy object per canonical point, so memo keys (the policy id) and identity agree;
    a point with no change from its base is the base era itself."""
    if not point.changes:
        return POLICIES[point.base]
    return build(point, POLICIES)
