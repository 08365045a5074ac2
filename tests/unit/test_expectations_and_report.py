"""Judging a run honestly: no evidence is "not exercised", an interrupt judges only what had
time to happen, and the receive bitrate does not fall to zero when someone leaves."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console
from rich.table import Table

from simulator.crowd.expectations import evaluate
from simulator.crowd.metrics import Metrics
from simulator.crowd.plan import CALL_OUTCOME_TIMEOUT, Plan, make_plan
from simulator.crowd.report import receive_rates
from simulator.crowd.runner import live_display
from simulator.crowd.scenario import load_scenario
from simulator.crowd.worker import LogTally

QUIET = """[scenario]
name = "quiet"
seed = 1
duration = 30

[[sessions]]
participants = 2
"""


def _verdicts(plan_text: str, metrics: Metrics, interrupted_at: float | None = None) -> dict[str, str]:
    return {e.name: e.verdict for e in evaluate(_plan(plan_text), metrics, interrupted_at)}


def _plan(text: str) -> Plan:
    return make_plan(load_scenario(text))


def test_invariants_without_evidence_are_not_exercised_never_a_silent_pass() -> None:
    verdicts = _verdicts(QUIET, Metrics())
    # Nobody mutes, nobody leaves before the end, no RTP arrived: nothing to judge them by.
    assert verdicts["muted_are_silent"] == "not exercised"
    assert verdicts["leaves_produce_events"] == "not exercised"
    assert verdicts["user_lists_converge"] == "fail"  # due at the end and missing: a real failure


def test_samples_taken_while_nobody_is_muted_do_not_exercise_the_mute_invariant() -> None:
    metrics = Metrics()
    metrics.observe("heard", 5.0, uid="a", heard=["b"])
    assert _verdicts(QUIET, metrics)["muted_are_silent"] == "not exercised"
    metrics.observe("mute", 6.0, uid="b", muted=True)
    metrics.observe("heard", 8.0, uid="a", heard=[])
    assert _verdicts(QUIET, metrics)["muted_are_silent"] == "pass"
    metrics.observe("heard", 9.0, uid="a", heard=["b"])
    assert _verdicts(QUIET, metrics)["muted_are_silent"] == "fail"


RINGING = (
    QUIET.replace("participants = 2", "participants = 3")
    + """
[behaviours]
churn = { every = [4.0, 6.0] }
ringing = { calls = 1, answers = ["reject"] }
"""
)


def test_an_interrupt_judges_only_windows_that_completed() -> None:
    plan = _plan(RINGING)
    ring = next(a for a in plan.actions if a.kind == "ring")
    leaves = [a for a in plan.actions if a.kind == "leave" and a.at < plan.scenario.scenario.duration]
    assert leaves, "the scenario must plan a mid-run leave"
    first_leave = min(a.at for a in leaves)
    early = min(first_leave, ring.at)  # nothing had its window complete yet
    verdicts = {e.name: e.verdict for e in evaluate(plan, Metrics(), interrupted_at=early)}
    assert verdicts == {
        "user_lists_converge": "not judged",
        "leaves_produce_events": "not exercised",
        "muted_are_silent": "not exercised",
        "ringing_ends_correctly": "not judged",
    }
    # Later, a ring whose outcome window completed is judged, and its missing outcome fails.
    late = ring.at + CALL_OUTCOME_TIMEOUT + 0.1
    if late < plan.scenario.scenario.duration:
        judged = {e.name: e.verdict for e in evaluate(plan, Metrics(), interrupted_at=late)}
        assert judged["ringing_ends_correctly"] == "fail"
    # The same empty metrics at the planned end: every window completed, so failures are failures.
    assert _verdicts(RINGING, Metrics())["ringing_ends_correctly"] == "fail"


def test_interrupted_slos_without_samples_are_not_judged_but_fail_a_complete_run() -> None:
    text = QUIET + "\n[expectations]\njoin_time_p95_ms = 1000\n"
    assert _verdicts(text, Metrics())["join_time_p95_ms"] == "fail"
    assert _verdicts(text, Metrics(), interrupted_at=1.0)["join_time_p95_ms"] == "not judged"


def test_the_receive_rate_counts_left_connections_and_has_no_fake_outage() -> None:
    # Worker 0 receives 125 kB/s (1 Mbit/s) throughout; a participant leaving at t = 6 must not
    # make the total step down to zero: its bytes were counted already.
    series = [
        {"worker": 0, "at": float(t), "bytes_received_total": 125_000 * t, "bytes_received": 0}
        for t in range(0, 12, 2)
    ]
    series += [{"worker": 1, "at": t + 0.3, "bytes_received_total": 250_000 * t} for t in range(0, 12, 2)]
    rates = receive_rates(series)
    assert [round(r, 6) for _, r in rates] == [3.0] * 5


def test_worker_logs_are_tallied_and_decoder_warnings_not_printed(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    decoder = logging.getLogger(LogTally.DECODER_LOGGER)
    with LogTally(metrics).installed():
        for _ in range(3):
            decoder.warning("RTCRtpReceiver(%s) failed to decode %s frame: %s", "video", "VP8", "x")
        logging.getLogger("aiortc.rtcdtlstransport").error("something broke")
    decoder.warning("RTCRtpReceiver(%s) failed to decode %s frame: %s", "video", "VP8", "after")
    assert (metrics.counters["decode_failures"], metrics.counters["logged_errors"]) == (3, 1)
    printed = [r.getMessage() for r in caplog.records]
    assert printed == ["something broke", "RTCRtpReceiver(video) failed to decode VP8 frame: after"]


def test_piped_output_ends_the_live_panel_before_the_summary() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=60)  # a file: not a terminal, as when piped
    panel = Table(title="progress")
    panel.add_column("elapsed")
    panel.add_row("3 s of 10 s")
    with live_display(console) as live:
        assert live is not None
        live.update(panel)
    console.print()  # what `callsim run` prints before its summary
    summary = Table(title="summary")
    summary.add_column("measure")
    console.print(summary)
    lines = buffer.getvalue().splitlines()
    closing = next(i for i, line in enumerate(lines) if line.startswith("└"))  # the panel's
    assert lines[closing + 1].strip() == ""  # a blank line, then the title on a line of its own
    assert lines[closing + 2].strip() == "summary"
