"""A participant's process killed mid-call, and a participant that joins and leaves as fast as it
can: the room carries on, and nobody hears an error."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from simulator import protocol
from simulator.sdk import CallAppSettingsBuilder, CallsClient, CallSettingsBuilder, CallView
from simulator.sdk.recorder import EventRecorder
from simulator.server import Backend
from tests.conftest import Join

pytestmark = pytest.mark.e2e

BOUND = protocol.HEARTBEAT * 1.5 + 6.0

VICTIM = """
import asyncio, sys
from simulator.sdk import CallAppSettingsBuilder, CallsClient, CallSettingsBuilder, CallView

async def main(url: str, auth: str) -> None:
    client = CallsClient(name="victim", media_path="lean")
    await client.init(CallAppSettingsBuilder().set_app_id("callsim").set_region("us").set_host(url).build())
    token = await client.generate_token("s1", auth)
    await client.start_session(token.token, CallSettingsBuilder().build(), CallView())
    await client.wait_joined()
    await asyncio.wait_for(client.session.media_connected.wait(), 30)
    print("in", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_a_killed_participant_process_is_removed_everywhere(backend: Backend, join: Join) -> None:
    alice = await join("alice", path="lean")
    auth = backend.provision_user("victim", "Victim")
    victim = await asyncio.create_subprocess_exec(
        sys.executable, "-c", VICTIM, backend.url, auth, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert victim.stdout is not None
        assert (await asyncio.wait_for(victim.stdout.readline(), 60)).strip() == b"in"
        await alice.evidence.wait_for(lambda: "victim" in alice.evidence.heard(), 20)
        victim.send_signal(signal.SIGKILL)  # no leave, no close frame: the kernel closes its sockets
        (left,) = await alice.recorder.wait_for("on_user_left", timeout=BOUND)
        assert left.uid == "victim"
        assert backend.rooms.participant_count("s1") == 1
        assert alice.recorder.of("on_error") == []
    finally:
        if victim.returncode is None:
            victim.kill()
        await victim.wait()


async def test_joining_and_leaving_as_fast_as_possible_ends_every_session_cleanly(
    backend: Backend, join: Join
) -> None:
    alice = await join("alice", path="lean")
    auth = backend.provision_user("bob", "Bob")
    app = CallAppSettingsBuilder().set_app_id("callsim").set_region("us").set_host(backend.url).build()
    recorders = []
    # Leave at every stage of a join: at once, once joined, once media is up.
    for round_, stage in enumerate(["start", "joined", "media"] * 4):
        recorder = EventRecorder(f"bob-{round_}")
        recorders.append(recorder)
        async with CallsClient(name=f"bob-{round_}", media_path="lean") as bob:
            await bob.init(app)
            token = await bob.generate_token("s1", auth)
            settings = CallSettingsBuilder().set_call_listener(recorder.listener()).build()
            await bob.start_session(token.token, settings, CallView())
            if stage != "start":
                await bob.wait_joined()
            if stage == "media":
                assert bob.session is not None
                await asyncio.wait_for(bob.session.media_connected.wait(), 15)
            bob.end_session()
            await bob.wait_closed()
    for recorder in recorders:
        assert recorder.of("on_error") == [], recorder.names()
    # Alice saw each Bob that got in leave again, and nothing else went wrong.
    joined = len(alice.recorder.of("on_user_joined"))
    assert joined >= 8  # every Bob that waited to be joined
    await alice.recorder.wait_for("on_user_left", count=joined)  # the last may still be on its way
    assert alice.recorder.of("on_error") == []
    assert backend.rooms.participant_count("s1") == 1
