"""The probe's logic without a kernel in the loop: policy mapping, skip reasons, comparison,
the CLI's report and exit status, and the web routes' switches (off by default, one at a time,
cached). Tests that run scenarios on this machine's kernel are in tests/kernel/."""

from __future__ import annotations

import argparse
import dataclasses
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from app.probe import capabilities, cli, compare, gate, web
from app.probe.capabilities import Capabilities, kernel_version, policy_for
from app.probe.executor import KernelRun, KernelStep, static_skip
from app.probe.gate import ProbeSettings
from app.probe.worker import decode_value, encode_value, frame_change
from engine import commands as c
from engine.syntax import format_command, format_scenario, parse

ALL_THERE = Capabilities(None, None, None, None, None, None)
NOTHING = Capabilities(
    swap="no swap configured",
    softdirty="no soft-dirty",
    iouring="no io_uring",
    uffd_wp="no uffd",
    gup_test="gup_test not available",
    forcewrite="no force",
)

BASIC = "P mmap a\nP write a v1\nP fork C\nP write a v2\nC read a\nP read a"


# ----------------------------------------------------------------------------- versions
@pytest.mark.parametrize(
    ("release", "policy"),
    [
        ("4.4.0-210-generic", "4.8"),
        ("4.8.17", "4.8"),
        ("4.9.0", "5.7"),
        ("5.7.19", "5.7"),
        ("5.8.0-63-generic", "5.8"),
        ("5.9.1", "5.9"),
        ("5.17.15", "5.9"),
        ("5.18.19", "5.18"),
        ("5.19.0", "5.19"),
        ("6.1.0-28-amd64", "5.19"),
        ("6.2.0", "6.2"),
        ("6.12.9", "6.2"),
        ("6.13.0", "6.13"),
        ("6.14.11", "6.13"),
        ("6.15.0-rc1", "6.15"),
        ("6.18.44-fc-v657", "6.15"),
        ("7.0.0", "6.15"),
    ],
)
def test_kernel_version_maps_to_the_policy_of_its_era(release: str, policy: str) -> None:
    assert policy_for(release) == policy


def test_an_unreadable_kernel_version_is_an_error() -> None:
    with pytest.raises(ValueError, match="kernel version"):
        kernel_version("linux")


# ------------------------------------------------------------------------------- values
def test_values_round_trip_through_page_bytes() -> None:
    for text in ("v1", "parent-v2", "a" * 32, "x:1.2+3"):
        assert decode_value(encode_value(text) + b"\xff" * 100) == text


def test_a_zero_page_reads_as_the_simulators_zero() -> None:
    assert decode_value(bytes(4096)) == "0"


def test_a_shorter_value_written_over_a_longer_one_hides_it() -> None:
    page = bytearray(encode_value("a-long-value"))
    page[: len(encode_value("ab"))] = encode_value("ab")
    assert decode_value(bytes(page)) == "ab"


# -------------------------------------------------------------------------- skip reasons
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("P mmap a\nP get a ro as d", "FOLL_GET reference other than vmsplice"),
        ("P mmap a\nP pin a ro as d", "only FOLL_LONGTERM pins"),
        ("P mmap a\nP pin a ro longterm as d", "gup_test not available"),
        ("P mmap a\nP iouring a as io", "no io_uring"),
        ("P mmap a\nP swapout a", "no swap configured"),
        ("file F x\nP mmap a file=F\nP swapout a", "no swap configured"),
        ("file F x\nP mmap a file=F shared\nP munmap a\nP mmap a\nP swapout a", "no swap"),
        ("file F x\nP mmap a file=F shared\nP fork C\nC exit\nC mmap a\nC swapout a", "no swap"),
        ("P mmap a\nP clear-softdirty", "no soft-dirty"),
        ("P mmap a\nP uffd-wp a on", "no uffd"),
        ("P mmap a\nP forcewrite a x", "no force"),
        ("P mmap a\nP forcewrite a x race", "racy Dirty COW exploit is not run"),
    ],
)
def test_commands_this_kernel_cannot_perform_skip_with_the_reason(text: str, reason: str) -> None:
    skipped = static_skip(parse(text), NOTHING)
    assert skipped is not None
    assert reason in skipped
    assert f"`{format_command(parse(text).commands[-1])}`" in skipped


def test_a_kernel_with_everything_runs_pins_rings_swap_and_uffd() -> None:
    text = (
        "P mmap a b\nP pin a ro longterm as p\nP iouring b as io\nP swapout a\n"
        "P uffd-wp a on\nP clear-softdirty\nP forcewrite b x\np read\nio write d"
    )
    assert static_skip(parse(text), ALL_THERE) is None


def test_writing_through_a_rw_pin_is_skipped_even_with_gup_test() -> None:
    # gup_test can pin for write but has no way to write through the pin (no device).
    text = "P mmap a\nP pin a rw longterm as mr\nmr write dma"
    skipped = static_skip(parse(text), ALL_THERE)
    assert skipped is not None and "cannot write through a pin" in skipped


def test_huge_pages_run_where_the_kernel_offers_them_and_say_why_not_elsewhere() -> None:
    """The probe maps THP and hugetlb itself (app.probe.thp, app.probe.hugetlb); a kernel
    without them skips with its reason, never running them as base pages."""
    texts = ("P mmap a backing=thp\nP write a x\nP pte-map a", "P mmap a backing=hugetlb\nP read a")
    for text in texts:
        assert static_skip(parse(text), ALL_THERE) is None
    missing = dataclasses.replace(ALL_THERE, thp="THP disabled", hugetlb="needs root")
    assert "THP disabled" in (static_skip(parse(texts[0]), missing) or "")
    assert "needs root" in (static_skip(parse(texts[1]), missing) or "")


def test_a_hugetlb_page_is_paged_out_without_swap_the_kernel_refuses_it_itself() -> None:
    text = "P mmap a backing=hugetlb\nP write a v1\nP swapout a"
    assert static_skip(parse(text), NOTHING) is None
    assert static_skip(parse("P mmap a backing=thp\nP write a v1\nP swapout a"), NOTHING)


def test_plain_anonymous_memory_needs_no_optional_facility() -> None:
    assert static_skip(parse(BASIC + "\nP vmsplice a as p\np read"), NOTHING) is None


# ---------------------------------------------------------------------------- comparing
def _kernel_run(scenario: c.Scenario, values: dict[int, str], **outcomes: str) -> KernelRun:
    """A fake kernel run that observes ``values`` at the given steps."""
    steps = []
    for index, cmd in enumerate(scenario.commands, 1):
        outcome = outcomes.get(f"s{index}", "ok")
        steps.append(KernelStep(index, format_command(cmd), outcome, values.get(index)))
    return KernelRun("6.18.0-test", tuple(steps))


def test_matching_reads_agree() -> None:
    scenario = parse(BASIC)
    result = compare.probe_scenario(
        scenario,
        name="t",
        policy="6.2",
        runner=lambda s, t: _kernel_run(s, {5: "v1", 6: "v2"}),
    )
    assert result.agree is True and result.status == "agree"
    assert [(o.step, o.value) for o in result.sim_observed] == [(5, "v1"), (6, "v2")]
    assert result.kernel_observed == result.sim_observed


def test_a_different_read_disagrees_and_names_the_step() -> None:
    scenario = parse(BASIC)
    result = compare.probe_scenario(
        scenario,
        name="t",
        policy="6.2",
        runner=lambda s, t: _kernel_run(s, {5: "v2", 6: "v2"}),
    )
    assert result.agree is False
    assert result.differing_steps == (5,)


def test_the_simulators_policy_decides_what_is_expected() -> None:
    # CVE-2020-29374: the pipe sees the parent's secret under the classic rule only.
    text = (
        "P mmap a\nP write a old\nP fork C\nC vmsplice a as pipe\nC munmap a\n"
        "P write a secret\npipe read"
    )
    fresh = compare.probe_scenario(
        parse(text), name="t", policy="6.2", runner=lambda s, t: _kernel_run(s, {7: "old"})
    )
    classic = compare.probe_scenario(
        parse(text), name="t", policy="5.7", runner=lambda s, t: _kernel_run(s, {7: "old"})
    )
    assert fresh.agree is True
    assert classic.agree is False


def test_refusals_are_compared_in_one_vocabulary() -> None:
    text = "P mmap a\nP mprotect a ro\nP write a x\nP munmap a\nP read a\nP dontneed a"
    scenario = parse(text)
    run = _kernel_run(scenario, {}, s3="segv", s5="segv", s6="error: ENOMEM")
    result = compare.probe_scenario(scenario, name="t", policy="6.2", runner=lambda s, t: run)
    assert [(o.step, o.value) for o in result.kernel_observed] == [
        (3, "SIGSEGV"),
        (5, "SIGSEGV"),
        (6, "call fails"),
    ]
    assert result.agree is True


def test_a_userfault_on_one_side_only_disagrees() -> None:
    scenario = parse("P mmap a\nP write a v1\nP uffd-wp a on\nP write a v2\nP read a")
    run = _kernel_run(scenario, {5: "v2"})  # no userfault reported by the "kernel"
    result = compare.probe_scenario(scenario, name="t", policy="6.2", runner=lambda s, t: run)
    assert result.agree is False
    assert result.differing_steps == (4,)


def test_a_skipped_run_is_neither_agreement_nor_disagreement() -> None:
    scenario = parse(BASIC)
    run = KernelRun("6.18.0-test", (), "no swap configured")
    result = compare.probe_scenario(scenario, name="t", policy="6.2", runner=lambda s, t: run)
    assert result.agree is None and result.status == "skipped"
    assert result.skipped == "no swap configured"
    assert result.to_json()["skipped"] == "no swap configured"


def test_the_report_json_has_the_documented_shape() -> None:
    report = compare.probe(
        presets=["cow-basic"], runner=lambda s, t: _kernel_run(s, {4: "v1", 6: "v1"})
    )
    doc = report.to_json()
    assert set(doc) == {"kernel", "policy", "swap", "results"}
    results = doc["results"]
    assert isinstance(results, list)
    (result,) = results
    assert set(result) >= {"preset", "agree", "kernel_observed", "sim_observed", "skipped"}
    assert result["preset"] == "cow-basic" and result["agree"] is True
    assert report.ok


def test_kernel_runs_survive_their_json_round_trip() -> None:
    run = KernelRun(
        "6.18",
        (KernelStep(1, "P mmap a", "ok"), KernelStep(2, "P read a", "ok", "0", 1)),
        None,
        (10, 11),
        (),
    )
    assert KernelRun.from_json(json.loads(json.dumps(run.to_json()))) == run


# ---------------------------------------------------------------------------------- CLI
def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cowlab")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture
def fake_kernel(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[int, str]]:
    """Replace the real kernel run with one that reads ``values`` (step -> value)."""
    values: dict[int, str] = {}
    monkeypatch.setattr(compare, "run_isolated", lambda s, t: _kernel_run(s, values))
    yield values


def test_cli_exits_0_when_everything_agrees(
    fake_kernel: dict[int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_kernel.update({4: "v1", 6: "v1"})
    args = _cli(["probe", "--preset", "cow-basic"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "agree" in out and "cow-basic" in out and "1 agree, 0 disagree, 0 skipped" in out


def test_cli_exits_1_and_shows_the_difference_when_something_disagrees(
    fake_kernel: dict[int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_kernel.update({4: "v1", 6: "parent-v2"})
    args = _cli(["probe", "--preset", "cow-basic"])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "step 6 `C read mem`: kernel parent-v2, simulator v1" in out


def test_cli_json_names_kernel_policy_and_results(
    fake_kernel: dict[int, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake_kernel.update({5: "v1", 6: "v2"})
    path = tmp_path / "s.cow"
    path.write_text(BASIC)
    args = _cli(["probe", "--json", str(path)])
    assert args.func(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["policy"] == policy_for(doc["kernel"])
    assert [r["preset"] for r in doc["results"]] == [str(path)]


def test_cli_refuses_an_unknown_preset_as_input_error() -> None:
    from app.cli.main import InputError

    args = _cli(["probe", "--preset", "no-such-preset"])
    with pytest.raises(InputError, match="unknown preset"):
        args.func(args)


# ---------------------------------------------------------------------------------- web
# A server that probes for pages addressed as TestClient's default Host.
ON = ProbeSettings(True, frozenset({"testserver"}), b"k" * 32)


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, fake_kernel: dict[int, str]) -> TestClient:
    monkeypatch.setattr(web, "_cache", type(web._cache)())
    app = FastAPI()
    app.include_router(web.router)
    return TestClient(app)


def allow(client: TestClient) -> None:
    """Switch probing on for the client's app, as `cowlab serve` on loopback would."""
    assert isinstance(client.app, FastAPI)
    client.app.state.probe = ON


def form(text: str) -> dict[str, str]:
    """A post of the probe form as the page renders it: the scenario and the form's token."""
    return {"s": text, gate.TOKEN_FIELD: gate.form_token(ON, "testserver")}


def button(client: TestClient, text: str) -> str:
    """The probe control a page of ``client``'s app would show for ``text``."""
    app = client.app
    assert isinstance(app, FastAPI)

    async def route(request: Request) -> HTMLResponse:
        return HTMLResponse(str(web.probe_button(request, request.query_params["s"])))

    app.add_api_route("/_button", route)
    return client.get("/_button", params={"s": text}).text


def test_probe_routes_are_off_by_default(client: TestClient) -> None:
    assert client.post("/probe", data=form(BASIC)).status_code == 403
    response = client.post("/api/v1/probe", json={"scenario": BASIC})
    assert response.status_code == 403
    assert response.json()["detail"]["error"] == "probe-off"
    assert client.get("/api/v1/probe").json()["enabled"] is False
    assert button(client, BASIC) == ""


def test_probe_fragment_shows_kernel_beside_simulator(
    client: TestClient, fake_kernel: dict[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(client)
    fake_kernel.update({5: "v1", 6: "v2"})
    response = client.post("/probe", data=form(BASIC))
    assert response.status_code == 200
    html = response.text
    assert "agrees with the simulator" in html
    assert "<td><code>C read a</code></td><td>v1</td><td>v1</td><td>yes</td>" in html


def test_probe_results_are_cached_per_scenario(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(client)
    calls: list[str] = []

    def runner(s: c.Scenario, t: float) -> KernelRun:
        calls.append("run")
        return _kernel_run(s, {5: "v1", 6: "v2"})

    monkeypatch.setattr(compare, "run_isolated", runner)
    first = client.post("/api/v1/probe", json={"scenario": BASIC}).json()
    second = client.post("/api/v1/probe", json={"scenario": BASIC.replace("\n", "; ")}).json()
    assert calls == ["run"]  # the same scenario, written differently, hits the cache
    assert first["cached"] is False and second["cached"] is True
    assert first["results"] == second["results"]


def test_only_one_probe_runs_at_a_time(client: TestClient) -> None:
    allow(client)
    with web._lock:  # as if another request were probing right now
        response = client.post("/api/v1/probe", json={"scenario": BASIC})
        fragment = client.post("/probe", data=form(BASIC))
    assert response.status_code == 429
    assert fragment.status_code == 429 and "Another probe is running" in fragment.text


def test_a_syntax_error_is_a_400_not_a_probe(client: TestClient) -> None:
    allow(client)
    response = client.post("/api/v1/probe", json={"scenario": "P frobnicate a"})
    assert response.status_code == 400
    assert response.json()["detail"]["error"] == "syntax"
    assert client.post("/probe", data=form("P frobnicate a")).status_code == 400


def test_the_button_says_why_a_scenario_cannot_run_here(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(client)
    monkeypatch.setattr(web, "runnable", lambda s: static_skip(s, NOTHING))
    runnable = button(client, BASIC)
    blocked = button(client, "P mmap a\nP swapout a")
    assert 'hx-post="/probe"' in runnable and "disabled" not in runnable
    assert "disabled" in blocked and "no swap configured" in blocked


def test_concurrent_requests_never_run_two_probes(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(client)
    running = threading.Event()
    release = threading.Event()
    active: list[int] = []
    overlap: list[int] = []

    def slow_runner(s: c.Scenario, t: float) -> KernelRun:
        active.append(1)
        overlap.append(len(active))
        running.set()
        release.wait(5)
        active.pop()
        return _kernel_run(s, {})

    monkeypatch.setattr(compare, "run_isolated", slow_runner)
    statuses: list[int] = []
    first = threading.Thread(
        target=lambda: statuses.append(
            client.post("/api/v1/probe", json={"scenario": "P mmap a\nP read a"}).status_code
        )
    )
    first.start()
    assert running.wait(5)
    statuses.append(client.post("/api/v1/probe", json={"scenario": BASIC}).status_code)
    release.set()
    first.join(5)
    assert sorted(statuses) == [200, 429]
    assert max(overlap) == 1


def test_a_pageout_the_kernel_declined_skips_instead_of_disagreeing() -> None:
    # MADV_PAGEOUT is advice; if the kernel kept a page the simulator swapped out, the rest is
    # another experiment.
    scenario = parse("P mmap a\nP write a v1\nP swapout a\nP read a")
    run = _kernel_run(scenario, {3: "stays resident", 4: "v1"})
    result = compare.probe_scenario(scenario, name="t", policy="6.2", runner=lambda s, t: run)
    assert result.status == "skipped"
    assert result.skipped is not None and "kept the page resident at step 3" in result.skipped


def test_pageout_outcomes_are_compared_like_reads() -> None:
    scenario = parse("P mmap a\nP write a v1\nP swapout a\nP read a")
    run = _kernel_run(scenario, {3: "swapped out", 4: "v1"})
    result = compare.probe_scenario(scenario, name="t", policy="6.2", runner=lambda s, t: run)
    assert result.agree is True
    assert (3, "swapped out") in {(o.step, o.value) for o in result.sim_observed}


def test_ioctl_numbers_match_the_kernel_headers() -> None:
    # Values as the C macros expand them on x86-64 and arm64 (include/uapi/…).
    from app.probe import gup_test, uffd

    assert gup_test.PIN_LONGTERM_TEST_START == 0x40186707  # _IOW('g', 7, 24 bytes)
    assert gup_test.PIN_LONGTERM_TEST_STOP == 0x6708  # _IO('g', 8)
    assert gup_test.PIN_LONGTERM_TEST_READ == 0x40086709  # _IOW('g', 9, __u64)
    assert uffd.UFFDIO_API == 0xC018AA3F
    assert uffd.UFFDIO_REGISTER == 0xC020AA00
    assert uffd.UFFDIO_WRITEPROTECT == 0xC018AA06


def test_a_scenario_over_the_limits_is_413_like_the_simulate_api(client: TestClient) -> None:
    allow(client)
    too_many = "\n".join(f"P{i} mmap a" for i in range(65))  # 65 processes > MAX_PROCS
    response = client.post("/api/v1/probe", json={"scenario": too_many})
    assert response.status_code == 413
    assert response.json()["detail"]["error"] == "limit"
    assert client.post("/probe", data=form(too_many)).status_code == 413
    broken = client.post("/api/v1/probe", json={"scenario": "P mmap"})
    assert (broken.status_code, broken.json()["detail"]["error"]) == (400, "syntax")


# ------------------------------------------------------------------------ runner stderr
LEAKY_RUNNER = (
    "-c",
    "import sys; sys.stderr.write('Traceback: /home/alice/secret.py line 3\\n'); sys.exit(3)",
)


def test_a_failing_runner_s_stderr_goes_to_the_log_not_to_the_result(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from app.probe import isolate

    monkeypatch.setattr(isolate, "RUNNER", LEAKY_RUNNER)
    with caplog.at_level("ERROR", logger="cowlab.probe"):
        run = isolate.run_isolated(parse("P mmap a"), timeout=5)
    assert run.skipped == isolate.RUNNER_FAILED.format(code=3)
    assert "/home/alice/secret.py" in caplog.text


def test_a_visitor_sees_a_fixed_text_when_the_runner_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.probe import isolate

    monkeypatch.setattr(isolate, "RUNNER", LEAKY_RUNNER)
    monkeypatch.setattr(compare, "run_isolated", isolate.run_isolated)
    monkeypatch.setattr(web, "_cache", type(web._cache)())
    app = FastAPI()
    app.include_router(web.router)
    client = TestClient(app)
    allow(client)
    page = client.post("/probe", data=form("P mmap a\nP read a"))
    api = client.post("/api/v1/probe", json={"scenario": "P mmap a\nP read a"}).json()
    assert page.status_code == 200 and "probe runner failed (exit 3)" in page.text
    assert api["results"][0]["skipped"] == isolate.RUNNER_FAILED.format(code=3)
    assert "secret" not in page.text and "secret" not in json.dumps(api)


def test_what_a_run_failed_to_clean_up_goes_to_the_log_not_to_the_result(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from app.probe import executor, isolate

    leaky = KernelRun("6.18", (), executor.CLEANUP_FAILED, leaks=("fd left: /home/alice/x",))
    monkeypatch.setattr(isolate, "RUNNER", ("-c", f"print({json.dumps(leaky.to_json())!r})"))
    with caplog.at_level("ERROR", logger="cowlab.probe"):
        run = isolate.run_isolated(parse("P mmap a"), timeout=5)
    assert run.skipped == executor.CLEANUP_FAILED and "alice" not in run.skipped
    assert "/home/alice/x" in caplog.text


def test_a_second_pageout_of_a_file_page_is_compared_like_with_like() -> None:
    """The kernel's first pageout unmaps the page-cache page (pagemap cannot tell it from a
    dropped one, so the worker says nothing), and its second finds no PTE; the simulator keeps
    the page mapped. Neither pageout is an observation on either side; the reads still are."""
    scenario = parse("file F x\nP mmap a file=F\nP read a\nP swapout a\nP swapout a\nP read a")
    run = _kernel_run(scenario, {3: "x", 5: "nothing to page out", 6: "x"})
    result = compare.probe_scenario(
        scenario, name="t", policy="6.2", runner=lambda s, t: run, swap="file"
    )
    assert result.agree is True, result
    assert {o.step for o in result.kernel_observed} == {3, 6}


def test_an_anonymous_page_of_a_file_mapping_still_reports_its_pageout() -> None:
    scenario = parse("file F x\nP mmap a file=F\nP write a v1\nP swapout a\nP read a")
    run = _kernel_run(scenario, {4: "swapped out", 5: "v1"})
    result = compare.probe_scenario(
        scenario, name="t", policy="6.2", runner=lambda s, t: run, swap="file"
    )
    assert result.agree is True
    assert (4, "swapped out") in {(o.step, o.value) for o in result.kernel_observed}


ZRAM_SCENARIO = (
    "P mmap a\nP write a v1\nP fork C\nC exit\nP swapout a\nP vmsplice a as pipe\n"
    "P write a v2\npipe read"
)


@pytest.mark.parametrize(("device", "pipe"), [("zram", "v2"), ("file", "v1")])
def test_the_simulator_swaps_to_the_machines_device(device: str, pipe: str) -> None:
    """A scenario without `#swap` runs in the simulator on the device the kernel will use:
    on zram (6.2) the page read back is exclusive and the write reuses it under the pipe."""
    scenario = parse(ZRAM_SCENARIO)
    run = _kernel_run(scenario, {5: "swapped out", 8: pipe})
    result = compare.probe_scenario(
        scenario,
        name="t",
        policy="6.2",
        runner=lambda s, t: run,
        swap="zram" if device == "zram" else "file",
    )
    assert result.agree is True, result


def test_a_scenario_naming_another_swap_device_is_skipped() -> None:
    scenario = parse("#swap zram\n" + ZRAM_SCENARIO)

    def runner(s: c.Scenario, t: float) -> KernelRun:
        raise AssertionError("must not run")

    result = compare.probe_scenario(scenario, name="t", policy="6.2", runner=runner, swap="file")
    assert result.status == "skipped"
    assert result.skipped is not None and "#swap zram" in result.skipped


def test_swap_areas_say_which_device_is_used_first() -> None:
    from app.probe.capabilities import swap_areas

    text = (
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        "/swap\\040file\t\t\t\tfile\t\t2097148\t\t0\t\t-2\n"
        "/dev/zram0                              partition\t8388604\t\t0\t\t100\n"
    )
    first, second = swap_areas(text)
    assert (first.path, first.device) == ("/dev/zram0", "zram")
    assert (second.path, second.device) == ("/swap file", "file")
    assert "SWP_SYNCHRONOUS_IO" in first.describe()
    assert swap_areas("Filename\tType\tSize\tUsed\tPriority\n") == ()


@pytest.mark.parametrize(
    "text",
    [
        "file F x\nP mmap a file=F shared\nP read a\nP swapout a",
        "file F x\nP mmap a file=F shared\nP fork C\nC swapout a",
    ],
)
def test_paging_out_a_shared_file_page_needs_no_swap(text: str) -> None:
    """MADV_PAGEOUT unmaps a shared memfd page whether or not there is swap to write it to."""
    assert static_skip(parse(text), dataclasses.replace(NOTHING, swap="no swap configured")) is None


# ------------------------------------------------------------------------------- frames
PRESENT = 1 << 63


@pytest.mark.parametrize(
    ("before", "after", "change"),
    [
        (0, PRESENT | 7, "new"),  # nothing mapped before the store: a first touch
        (1 << 62, PRESENT | 7, "new"),  # a swap entry before: swapped in
        (PRESENT | 7, PRESENT | 7, "kept"),
        (PRESENT | 7, PRESENT | 9, "replaced"),
        (PRESENT, PRESENT, None),  # PFNs hidden (no CAP_SYS_ADMIN): pagemap shows 0
    ],
)
def test_a_store_s_frame_change_is_read_from_pagemap(
    before: int, after: int, change: str | None
) -> None:
    assert frame_change(before, after) == change


def test_frames_are_compared_only_when_asked_and_where_the_kernel_showed_them() -> None:
    scenario = parse(BASIC)  # 2 write (new page), 4 write (COW: copy)

    def kernel(frames: dict[int, str]) -> KernelRun:
        run = _kernel_run(scenario, {5: "v1", 6: "v2"})
        steps = tuple(dataclasses.replace(s, frame=frames.get(s.index)) for s in run.steps)
        return dataclasses.replace(run, steps=steps)

    def probe(frames: dict[int, str], *, compared: bool) -> compare.ProbeResult:
        return compare.probe_scenario(
            scenario, name="t", policy="6.2", runner=lambda s, t: kernel(frames), frames=compared
        )

    right = {2: "new", 4: "replaced"}
    assert probe(right, compared=True).agree is True
    result = probe({2: "new", 4: "kept"}, compared=True)
    assert result.agree is False and result.differing_steps == (4,)
    assert probe({2: "new", 4: "kept"}, compared=False).agree is True
    # A kernel that hides PFNs adds nothing, and nothing is expected of it.
    hidden = probe({}, compared=True)
    assert hidden.agree is True
    assert all(not o.value.startswith("frame") for o in hidden.sim_observed)


# ------------------------------------------------------------- a machine that swaps to zram
ZRAM_SWAPS = (
    "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    "/dev/zram0                              partition\t8388604\t\t0\t\t100\n"
)


def _printing_runner(s: c.Scenario, t: float) -> KernelRun:
    """A kernel run that, as `run_isolated` does, hands the scenario over as text first."""
    return _kernel_run(parse(format_scenario(s)), {5: "v1", 6: "v2"})


def test_a_zram_machine_probes_a_scenario_without_annotations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Regression: the simulator's copy carries `swap=zram`, and giving that copy to the runner
    # made `format_scenario` refuse annotations no `#` line spells (a traceback, a 500).
    zram = capabilities.swap_areas(ZRAM_SWAPS)
    monkeypatch.setattr(capabilities, "swap_areas", lambda text=None: zram)
    assert capabilities.swap_device() == "zram"
    result = compare.probe_scenario(parse(BASIC), name="t", policy="6.15", runner=_printing_runner)
    assert result.agree is True and result.skipped is None
    swapping = parse(BASIC + "\nP swapout a\nP read a")
    result = compare.probe_scenario(swapping, name="t", policy="6.15", runner=_printing_runner)
    assert result.skipped is None


def test_a_zram_machine_answers_the_probe_api(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    allow(client)
    zram = capabilities.swap_areas(ZRAM_SWAPS)
    monkeypatch.setattr(capabilities, "swap_areas", lambda text=None: zram)
    monkeypatch.setattr(compare, "run_isolated", _printing_runner)
    response = client.post("/api/v1/probe", json={"scenario": BASIC})
    assert response.status_code == 200
    assert response.json()["swap"].startswith("#swap zram")
    assert response.json()["results"][0]["agree"] is True
