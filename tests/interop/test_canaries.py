"""Canaries: the unmodified published SDK in Chromium inside a crowd of 40, on the embedded
backend (``[[sessions]] browsers``), measured and judged beside the virtual participants."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.published_sdk import DOMAIN
from simulator.server import Backend
from tests.conftest import backend_in_a_thread
from tests.interop.test_published_sdk_joins import REQUIRED, SDK, _missing

pytestmark = pytest.mark.interop

CROWD = """
[scenario]
name = "canaried"
seed = 12
duration = 30
join_rate = 10

[[sessions]]
count = 1
participants = 4
media = "lean"
browsers = 1

[[sessions]]
count = 9
participants = 4
media = "lean"

[behaviours]
mute = { every = [6.0, 10.0], hold = [3.0, 5.0] }

[expectations]
join_time_p95_ms = 5000

[expectations.canaries]
first_frame_p95_ms = 10000
freezes_per_minute_max = 6
audio_from_everyone = true
"""


def needs_the_interop_machinery() -> None:
    if missing := _missing():
        if REQUIRED:
            pytest.fail(f"canaries without {' and '.join(missing)} (see tox -e interop)")
        pytest.skip(f"needs {' and '.join(missing)}: run `tox -e interop`")


def test_a_canary_in_a_crowd_of_forty_is_measured_and_judged_beside_it(tmp_path: Path) -> None:
    needs_the_interop_machinery()
    (tmp_path / "crowd.toml").write_text(CROWD)
    report = tmp_path / "report"
    run = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "run", str(tmp_path / "crowd.toml"), "--no-live",
         "--report", str(report), "--sdk-bundle", str(SDK)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    data = json.loads((report / "run.json").read_text())
    failed = [e for e in data["expectations"] if not e["passed"]]
    assert run.returncode == 0, (failed, run.stdout[-3000:], run.stderr[-2000:])
    assert len(data["participants"]) == 40
    (canary,) = data["canaries"]
    assert canary["joined"] and not canary["error"]
    assert canary["first_frame_ms"] is not None and canary["audible"] >= 3
    names = {e["name"] for e in data["expectations"]}
    assert {"canaries.joined", "canaries.first_frame_p95_ms", "canaries.audio_from_everyone"} <= names
    # The canary's own callbacks took part in the crowd's invariants: its list is one of the 40.
    lists = [o for o in data["observations"] if o["kind"] == "list"]
    assert canary["uid"] in {o["uid"] for o in lists} and len(lists) == 40
    page = (report / "report.html").read_text()
    assert "Canaries: the published SDK in Chromium" in page and canary["uid"] in page
    assert f"canary {canary['uid']}" in run.stdout


SMALL = """
[scenario]
name = "remote-canary"
seed = 2
duration = 16
join_rate = 8

[[sessions]]
count = 2
participants = 3
media = "lean"
browsers = 1
"""


def test_canaries_join_a_running_backend_through_its_own_sdk_page(tmp_path: Path, running: Backend) -> None:
    """``callsim run --backend`` (a ``callsim serve``): the canaries open the backend's page."""
    (tmp_path / "small.toml").write_text(SMALL)
    code = main(
        ["run", str(tmp_path / "small.toml"), "--no-live", "--report", str(tmp_path / "r"),
         "--backend", running.url, "--api-key", running.api_key]
    )  # fmt: skip
    data = json.loads((tmp_path / "r" / "run.json").read_text())
    assert code == 0, [e for e in data["expectations"] if not e["passed"]]
    assert [c["joined"] for c in data["canaries"]] == [True, True]
    assert all(c["audible"] == c["others"] == 2 for c in data["canaries"])


@pytest.fixture
def running() -> Iterator[Backend]:
    """A backend with its XMPP door and the SDK's page on 443, reachable from the CLI's run."""
    needs_the_interop_machinery()
    with backend_in_a_thread(xmpp=True, https_port=443, sdk_bundle=SDK, webrtc_host=DOMAIN) as backend:
        yield backend
