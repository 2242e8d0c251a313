"""Hypothesis over custom policy ids: any spelling, good or bad, through the CLI, the API and
every route that takes one. Nothing answers 500 or a traceback, the three surfaces agree on
what they accept, and an accepted id's canonical form is a fixed point."""

from __future__ import annotations

import contextlib
import io
import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from app.cli import main as cli
from app.http.main import create_app
from engine.policies import POLICIES
from engine.policies.knobs import KNOBS

CLIENT = TestClient(create_app(), raise_server_exceptions=False)
SCENARIO = (
    "P mmap a\nP write a v1\nP fork C\nC vmsplice a as pipe\nC munmap a\nP write a v2\npipe read\n"
)
JUNK = st.text(alphabet="ab-_=,:. 9é\x00", max_size=8)

bases = st.one_of(st.sampled_from([*POLICIES, "latest"]), JUNK)
# Mostly real knobs, so that long valid ids (several knobs named) are drawn often.
knob_ids = st.one_of(st.sampled_from(list(KNOBS)), st.sampled_from(list(KNOBS)), JUNK)


@st.composite
def custom_ids(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        # A well-formed spelling (possibly refused): every knob at most once, real choices.
        knobs = draw(st.lists(st.sampled_from(list(KNOBS)), unique=True, max_size=len(KNOBS)))
        parts = [f"base={draw(st.sampled_from(list(POLICIES)))}"] + [
            f"{k}={draw(st.sampled_from([c.id for c in KNOBS[k].choices]))}" for k in knobs
        ]
        draw(st.randoms(use_true_random=False)).shuffle(parts)
        return "custom:" + ",".join(parts)
    parts = []
    if draw(st.booleans()) or draw(st.booleans()):
        parts.append(f"base={draw(bases)}")
    for knob in draw(st.lists(knob_ids, max_size=8)):
        if knob in KNOBS and draw(st.integers(0, 4)):
            choice = draw(st.sampled_from([c.id for c in KNOBS[knob].choices]))
        else:
            choice = draw(JUNK)
        parts.append(f"{knob}={choice}")
    draw(st.randoms(use_true_random=False)).shuffle(parts)
    return "custom:" + draw(st.sampled_from([",", ", ", ",,"])).join(parts)


def run_cli(policy: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        import sys

        stdin = sys.stdin
        sys.stdin = io.TextIOWrapper(io.BytesIO(SCENARIO.encode()), encoding="utf-8")
        try:
            status = cli.main(["run", "-", "--policy", policy, "--json"])
        finally:
            sys.stdin = stdin
    return status, out.getvalue(), err.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(custom_ids())
def test_custom_ids_agree_across_cli_api_and_routes(policy: str) -> None:
    status, out, err = run_cli(policy)
    assert status in (0, 2) and "Traceback" not in err
    api = CLIENT.post("/api/v1/simulate", json={"scenario": SCENARIO, "policy": policy})
    assert api.status_code in (200, 400, 422), api.text
    q = quote(policy, safe="")
    page = CLIENT.get(f"/?v=1&s=P+mmap+a;P+write+a+v1&policy={q}")
    lab = CLIENT.get(f"/lab?policy={q}")
    compare = CLIENT.get(f"/compare?v=1&s=P+mmap+a&policies=5.9&custom={q}")
    for r in (page, lab, compare):
        assert r.status_code < 500, (r.url, r.status_code)
    accepted = status == 0
    assert (api.status_code == 200) == accepted
    assert (page.status_code == 200) == accepted
    assert (lab.status_code == 200) == accepted
    if accepted:
        canonical = json.loads(out)["policy"]
        assert api.json()["policy"] == canonical
        again, out2, _ = run_cli(canonical)
        assert again == 0 and json.loads(out2)["policy"] == canonical
    else:
        assert err.startswith("cowlab: ")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(custom_ids(), min_size=1, max_size=6), st.dictionaries(knob_ids, JUNK, max_size=4))
def test_many_custom_columns_and_form_fields_never_fail(
    policies: list[str], fields: dict[str, str]
) -> None:
    query = "&".join(f"custom={quote(p, safe='')}" for p in policies)
    for path in ("/compare?v=1&s=P+mmap+a&", "/presets?"):
        r = CLIENT.get(path + query)
        assert r.status_code < 500, (path, r.status_code)
        if len({p.strip() for p in policies if p.strip()}) > 4:
            assert r.status_code == 400
    form = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in fields.items())
    r = CLIENT.get("/lab?base=5.9&" + form, follow_redirects=False)
    assert r.status_code in (200, 303, 400)
