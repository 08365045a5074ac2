"""``callsim run`` end to end: worker processes, a report, failing expectations, Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import psutil
import pytest

from simulator.cli import main
from simulator.crowd.metrics import CONNECT_PHASES

pytestmark = pytest.mark.e2e

SHORT = """
[scenario]
name = "short"
seed = 3
duration = 16
join_rate = 10

[[sessions]]
count = 2
participants = 2

[behaviours]
mute = { every = [2.0, 4.0] }
churn = { every = [3.0, 5.0] }
ringing = { calls = 1, answers = ["accept"] }

[expectations]
join_time_p95_ms = 10000
first_audio_p95_ms = 15000
"""


def run(tmp_path: Path, scenario: str, *extra: str) -> tuple[int, Path]:
    path = tmp_path / "scenario.toml"
    path.write_text(scenario)
    report = tmp_path / "report"
    code = main(["run", str(path), "--workers", "2", "--report", str(report), "--no-live", *extra])
    return code, report


def test_a_short_run_passes_and_writes_a_complete_report(tmp_path: Path) -> None:
    code, report = run(tmp_path, SHORT)
    data = json.loads((report / "run.json").read_text())
    failed = [e for e in data["expectations"] if not e["passed"]]
    assert code == 0, failed
    assert data["passed"] is True
    assert len(data["participants"]) == 4
    assert {e["name"] for e in data["expectations"]} == {
        "join_time_p95_ms", "first_audio_p95_ms", "user_lists_converge", "leaves_produce_events",
        "muted_are_silent", "ringing_ends_correctly",
    }  # fmt: skip
    assert data["histograms"]["join_ms"]["count"] >= 4
    assert data["counters"]["joins"] >= 4
    assert len(data["workers"]) == 2
    assert data["series"]
    assert data["steady"] is None or 0 < data["steady"]["delivery"] <= 1  # churn may leave no window
    assert any(o["kind"] == "left" for o in data["observations"])  # churn was seen by the others
    junit = ET.parse(report / "junit.xml").getroot()
    assert (junit.get("tests"), junit.get("failures")) == ("6", "0")
    page = (report / "report.html").read_text()
    assert "short: PASS" in page
    assert page.count("<svg") == 4


def test_an_unmet_expectation_fails_the_run(tmp_path: Path) -> None:
    impossible = SHORT.replace("duration = 16", "duration = 6").replace(
        "join_time_p95_ms = 10000", "join_time_p95_ms = 1"
    )
    code, report = run(tmp_path, impossible)
    assert code == 1
    data = json.loads((report / "run.json").read_text())
    assert data["passed"] is False
    failed = {e["name"] for e in data["expectations"] if not e["passed"]}
    assert "join_time_p95_ms" in failed
    junit = ET.parse(report / "junit.xml").getroot()
    failure = junit.find("testcase[@name='join_time_p95_ms']/failure")
    assert failure is not None
    assert "limit p95 ≤ 1 ms" in (failure.get("message") or "")


def test_a_bad_scenario_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run(tmp_path, "[[sessions]]\nparticipants = 0\n")
    assert code == 2
    assert "sessions[0].participants" in capsys.readouterr().err
    assert not report.exists()


def test_ctrl_c_stops_cleanly_reports_and_says_interrupted_everywhere(tmp_path: Path) -> None:
    report = tmp_path / "report"
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "run", "--duration", "120", "--workers", "2",
         "--no-live", "--report", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # the run's own progress lines; pytest-timeout bounds the wait
        seen.append(line)
        match = re.search(r"joined (\d+)/", line)
        if match and int(match.group(1)) >= 2:
            break
    # Worker processes, not multiprocessing's resource tracker (which exits after its parent).
    workers = [c for c in psutil.Process(process.pid).children() if "spawn_main" in " ".join(c.cmdline())]
    assert len(workers) >= 2, "".join(seen)
    process.send_signal(signal.SIGINT)  # in full flight: participants are in their sessions
    output, _ = process.communicate(timeout=90)
    # An interrupt is not a failure: its own exit code, and nothing planned after it is judged.
    assert process.returncode == 130, output[-2000:]
    assert "INTERRUPTED at" in output
    assert "FAILED" not in output, output[-2000:]
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers left running: {alive}"
    data = json.loads((report / "run.json").read_text())
    assert (data["interrupted"], data["verdict"]) == (True, "INTERRUPTED")
    assert 0 < data["interrupted_at"] < 120
    assert data["counters"]["joins"] >= 1
    verdicts = {e["name"]: e["verdict"] for e in data["expectations"]}
    assert "fail" not in verdicts.values(), data["expectations"]
    assert verdicts["user_lists_converge"] == "not judged"  # its snapshot was due at 118.5 s
    junit = ET.parse(report / "junit.xml").getroot()
    assert junit.get("failures") == "0"
    assert junit.find("properties/property[@name='verdict']").get("value") == "INTERRUPTED"
    assert junit.find("testcase[@name='interrupted']/skipped") is not None
    assert junit.find("testcase[@name='user_lists_converge']/skipped") is not None
    assert "Interrupted</b> (Ctrl-C)" in (report / "report.html").read_text()


def test_setup_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy_port = taken.getsockname()[1]
    cases = [
        (["--backend", "http://127.0.0.1:9/"], "--backend needs --api-key"),
        (["--backend", "notaurl", "--api-key", "k"], "is not an http(s) URL with a host"),
        (
            ["--backend", "http://127.0.0.1:9/", "--api-key", "k"],
            "cannot reach the backend at http://127.0.0.1:9/",
        ),
        (["--browsers", "1", "--sdk-bundle", str(tmp_path / "none.js")], "canaries need"),
        (["--browsers", "1", "--target", "https://127.0.0.1:9/", "--anonymous"], "canaries (browsers"),
        (["--metrics", f"127.0.0.1:{busy_port}"], f"cannot serve --metrics on 127.0.0.1:{busy_port}"),
        (["--dashboard", f"127.0.0.1:{busy_port}"], f"cannot serve --dashboard on 127.0.0.1:{busy_port}"),
    ]
    for options, message in cases:
        code = main(["run", *options, "--duration", "5", "--no-live", "--report", str(tmp_path / "r")])
        err = capsys.readouterr().err
        assert code == 2
        assert message in err
        assert err.count("\n") == 1, err  # one line, no traceback
    assert not (tmp_path / "r").exists()
    taken.close()


def test_serve_keeps_a_random_api_key_out_of_its_output(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "serve", "--port", "0", "--db", str(db), "--no-xmpp"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        key_file = tmp_path / "x.db.apikey"
        assert f"apiKey in {key_file}" in line, line
        key = key_file.read_text().strip()
        assert len(key) >= 16 and key not in line
        assert key_file.stat().st_mode & 0o777 == 0o600
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_serve_on_a_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = ["serve", "--port", str(port), "--db", str(tmp_path / "x.db"), "--no-xmpp"]
        done = subprocess.run(
            [sys.executable, "-m", "simulator.cli", *command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr.startswith("callsim: serve: cannot listen on 127.0.0.1: ")
    assert str(port) in done.stderr and "address already in use" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr


LOAD = """
[scenario]
name = "load"
seed = 5
duration = 24
join_rate = 20

[[sessions]]
count = 3
participants = 4
media = "lean"
full_sample = 1
"""


def test_a_lean_run_reports_its_steady_state(tmp_path: Path) -> None:
    code, report = run(tmp_path, LOAD)
    data = json.loads((report / "run.json").read_text())
    assert code == 0, [e for e in data["expectations"] if not e["passed"]]
    steady = data["steady"]
    assert steady is not None, [(s["worker"], s["at"], s["joined"]) for s in data["series"]]
    assert steady["participants"] == 12
    assert steady["delivery"] > 0.9  # a loaded CI machine still delivers nearly everything
    assert steady["received_packets_per_second"] > 0
    assert steady["rss_per_participant_mib"] < 50
    assert data["histograms"]["latency_ms"]["count"] > 0  # sampled marks from the lean path
    connects = data["histograms"]["connect_ms"]["count"]
    assert connects >= 12
    assert all(data["histograms"][f"connect_{phase}_ms"]["count"] == connects for phase in CONNECT_PHASES)


NETWORKS = """
[scenario]
name = "networks"
seed = 5
duration = 14
join_rate = 10

[[sessions]]
count = 1
participants = 4
media = "lean"
networks = ["clean", "lossy"]

[networks.lossy.base]
down = { loss = 0.06 }

[expectations.networks.lossy]
loss_max_percent = 12
freezes_per_minute_max = 30
latency_p95_ms = 5000

[expectations.networks.clean]
loss_max_percent = 0.5
"""


def test_a_run_reports_what_each_network_saw(tmp_path: Path) -> None:
    code, report = run(tmp_path, NETWORKS)
    data = json.loads((report / "run.json").read_text())
    assert code == 0, [e for e in data["expectations"] if not e["passed"]]
    rows = data["networks"]
    assert set(rows) == {"clean", "lossy"}

    def loss(row: str) -> float:
        match = re.search(r"RTP loss seen ([\d.]+) %", row)
        assert match, row
        return float(match.group(1))

    assert 3.0 <= loss(rows["lossy"]) <= 9.0  # what its downlink dropped
    assert loss(rows["clean"]) < 1.0  # the lossy ones' uplinks are clean
    dropped = re.search(r"down ([\d.]+) % dropped", rows["lossy"])
    assert dropped and 3.0 <= float(dropped.group(1)) <= 9.0, rows["lossy"]
    assert "SFU: NACKed" in rows["lossy"]  # what the SFU did for them, from the backend's counts
    assert "the others saw of them" in rows["lossy"]
    judged = {
        e["name"]: e["verdict"] for e in data["expectations"] if e["name"].startswith(("lossy.", "clean."))
    }
    assert judged == {
        "lossy.loss_max_percent": "pass", "lossy.freezes_per_minute_max": "pass",
        "lossy.latency_p95_ms": "pass", "clean.loss_max_percent": "pass",
    }  # fmt: skip
