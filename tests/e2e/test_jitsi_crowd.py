"""``callsim run`` through the Jitsi door: a crowd of native and Jitsi-protocol participants on
the embedded backend (its XMPP door on a real Prosody), and ``--target``, a Jitsi-style
deployment reached only by its protocol, with its tokens, and its refusals as one line."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from simulator.cli import main
from simulator.crowd.jitsi import XMPP_PHASES, JitsiTarget, TargetError, probe
from simulator.crowd.plan import make_plan
from simulator.crowd.scenario import load_scenario
from simulator.sdk.jitsi.xmpp import FRAMING
from simulator.server import Backend
from simulator.serving import serving
from tests.conftest import backend_in_a_thread, in_a_thread
from tests.e2e.test_xmpp_companion import backend  # noqa: F401 - the fixture
from tests.e2e.test_xmpp_door import call_token, pytestmark  # noqa: F401 - the skip marks

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
EXAMPLE = Path(__file__).parents[2] / "examples" / "jitsi-crowd.toml"

JITSI_ONLY = """
[scenario]
name = "target"
seed = 5
duration = 14
join_rate = 8

[[sessions]]
count = 1
participants = 3
media = "lean"
door = "jitsi"

[behaviours]
mute = { every = [2.0, 4.0] }
"""


def run(tmp_path: Path, scenario: Path | str, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    if isinstance(scenario, str):
        path = tmp_path / "scenario.toml"
        path.write_text(scenario)
        scenario = path
    report = tmp_path / "report"
    code = main(["run", str(scenario), "--workers", "2", "--report", str(report), "--no-live", *extra])
    data = json.loads((report / "run.json").read_text()) if (report / "run.json").exists() else {}
    return code, data


def test_a_mixed_crowd_holds_every_invariant_across_the_doors(tmp_path: Path) -> None:
    code, data = run(tmp_path, EXAMPLE, "--duration", "24")
    failed = [e for e in data["expectations"] if not e["passed"]]
    assert code == 0 and data["passed"], failed
    assert not data["worker_errors"]
    door = {p["uid"]: p["door"] for p in data["participants"]}
    session = {p["uid"]: p["session"] for p in data["participants"]}
    assert set(door.values()) == {"native", "jitsi"}
    histograms = data["histograms"]
    assert histograms["join_ms@native"]["count"] and histograms["join_ms@jitsi"]["count"]
    assert all(histograms[f"xmpp_{phase}_ms"]["count"] for phase in XMPP_PHASES)
    # Each door hears the other: a participant's tone, decoded by the others of its session.
    heard_across: set[tuple[str, str]] = set()
    for sample in (o for o in data["observations"] if o["kind"] == "heard"):
        for uid in sample["heard"]:
            if session[uid] == session[sample["uid"]] and door[uid] != door[sample["uid"]]:
                heard_across.add((door[sample["uid"]], door[uid]))
    assert heard_across == {("native", "jitsi"), ("jitsi", "native")}
    # The Jitsi door's leaves were seen by the natives, and the other way.
    left_across = {
        (door[o["observer"]], door[o["left"]]) for o in data["observations"] if o["kind"] == "left"
    }
    assert {("native", "jitsi"), ("jitsi", "native")} <= left_across


def test_a_jitsi_door_scenario_is_checked_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run(tmp_path, JITSI_ONLY.replace('media = "lean"', 'media = "passthrough"'))
    assert code == 2
    assert 'door "jitsi" takes media = "lean" or "full"' in capsys.readouterr().err


# --- an external deployment ----------------------------------------------------------------------


def test_a_jwt_deployment_runs_a_crowd_with_tokens_signed_for_its_rooms(
    tmp_path: Path, served: Backend
) -> None:
    secret = served.store.secret()
    code, data = run(tmp_path, JITSI_ONLY, *target_of(served), "--jwt-secret", secret)
    failed = [e for e in data["expectations"] if not e["passed"]]
    assert code == 0 and data["passed"], failed
    assert {p["door"] for p in data["participants"]} == {"jitsi"}
    assert data["histograms"]["join_ms@jitsi"]["count"] >= 3


def test_a_cometchat_style_deployment_runs_a_crowd_with_call_tokens(tmp_path: Path, served: Backend) -> None:
    code, data = run(tmp_path, JITSI_ONLY, *target_of(served), "--api-key", served.api_key)
    assert code == 0 and data["passed"], data.get("expectations")


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--jwt-secret", "not-the-secret-" * 3], "the XMPP server refused the login: not-authorized"),
        (["--api-key", "not-the-key"], "refused to provision"),
        (["--anonymous"], "the XMPP server refused the login: not-authorized: no call token in the URL"),
    ],
    ids=["forged-jwt", "wrong-api-key", "anonymous-on-a-token-deployment"],
)
def test_a_refused_token_is_one_line_and_exit_2(
    tmp_path: Path, served: Backend, capsys: pytest.CaptureFixture[str], options: list[str], says: str
) -> None:
    code, _ = run(tmp_path, JITSI_ONLY, *target_of(served), *options)
    err = capsys.readouterr().err
    assert code == 2
    assert says in err and len(err.strip().splitlines()) == 1, err
    assert served.rooms.get("target-0-0") is None  # nobody got in


def test_an_unreachable_target_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        target = f"https://127.0.0.1:{closed.getsockname()[1]}/"
    code, _ = run(
        tmp_path, JITSI_ONLY, "--target", target, "--jwt-secret", "s" * 32, "--xmpp-domain", "x.test"
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"cannot reach {target}" in err


def test_a_focus_that_never_answers_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], silent_focus: str
) -> None:
    code, _ = run(
        tmp_path, JITSI_ONLY, "--target", silent_focus, "--anonymous", "--xmpp-domain", "quiet.test"
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "the focus (focus.quiet.test) never answered the conference request" in err


async def test_a_refused_join_says_the_rooms_own_reason(backend: Backend) -> None:  # noqa: F811
    """A token service that signs for the wrong room: the room's refusal, with its text."""

    class WrongRoom(JitsiTarget):
        async def token(self, *args: object) -> str:
            return call_token(backend, "mallory", "elsewhere")

    planned = make_plan(load_scenario(JITSI_ONLY)).participants[0]
    target = WrongRoom(backend.url, backend.webrtc_host, "rest", rest=backend.url)
    with pytest.raises(TargetError) as refused:
        await probe(target, planned, "")
    assert str(refused.value) == (
        f"{backend.url}: the room refused the join: forbidden: the call token is for another session"
    )


def target_of(deployment: Backend) -> list[str]:
    return ["--target", deployment.url, "--xmpp-domain", deployment.webrtc_host]


@pytest.fixture
def served() -> Iterator[Backend]:
    """A backend with its XMPP door, reachable from the CLI's own run."""
    with backend_in_a_thread(xmpp=True) as deployment:
        yield deployment


@pytest.fixture
def silent_focus() -> Iterator[str]:
    """An XMPP server over WebSocket that logs anyone in and never answers anything else: a
    deployment whose focus is down (in a thread, for the CLI's own event loop)."""

    async def xmpp(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("xmpp",))
        await ws.prepare(request)
        opened = 0
        async for message in ws:
            data = str(message.data)
            if data.startswith("<open"):
                opened += 1
                features = (
                    f'<mechanisms xmlns="{SASL}"><mechanism>ANONYMOUS</mechanism></mechanisms>'
                    if opened == 1
                    else f'<bind xmlns="{BIND}"/>'
                )
                await ws.send_str(f'<open xmlns="{FRAMING}" from="quiet.test" id="s" version="1.0"/>')
                await ws.send_str(
                    f'<stream:features xmlns:stream="http://etherx.jabber.org/streams">{features}</stream:features>'
                )
            elif data.startswith("<auth"):
                await ws.send_str(f'<success xmlns="{SASL}"/>')
            elif "xmpp-bind" in data:
                ident = data.split('id="', 1)[1].split('"', 1)[0]
                await ws.send_str(
                    f'<iq xmlns="jabber:client" type="result" id="{ident}">'
                    f'<bind xmlns="{BIND}"><jid>anon@quiet.test/r</jid></bind></iq>'
                )
            # the conference IQ, and anything else: never answered
        return ws

    app = web.Application()
    app.router.add_get("/xmpp-websocket", xmpp)
    with in_a_thread(lambda: serving(app, "127.0.0.1", 0)) as base:
        yield f"{base}/"
