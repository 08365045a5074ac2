"""§E idle timeout and §I devices in a real session, on the virtual clock."""

from __future__ import annotations

import pytest

from simulator.clock import VirtualClock
from simulator.media.devices import FakeDevices
from simulator.media.sources import SourceTag
from simulator.sdk import CallSettingsBuilder, IdleState
from simulator.server import Backend
from tests.conftest import Join

pytestmark = pytest.mark.e2e


async def test_alone_the_prompt_comes_at_t_minus_60_and_stay_restarts(join: Join) -> None:
    clock = VirtualClock()
    alice = await join("alice", clock=clock, builder=CallSettingsBuilder().set_idle_timeout_period(150))
    assert alice.view.idle_state is IdleState.ARMED
    clock.advance(89.9)
    assert not alice.view.prompt_visible
    clock.advance(0.1)
    assert (alice.view.idle_state, alice.view.idle_seconds_left) == (IdleState.PROMPT, 60)
    clock.advance(30)
    assert alice.view.idle_seconds_left == 30
    alice.view.press_stay()
    assert alice.view.idle_state is IdleState.ARMED
    clock.advance(89)
    assert not alice.view.prompt_visible
    assert [n for n in alice.recorder.names() if n != "on_media_device_list_updated"] == []  # no prompt event


async def test_expiry_times_out_and_leaves(join: Join, backend: Backend) -> None:
    clock = VirtualClock()
    alice = await join("alice", clock=clock)
    alice.client.add_call_event_listener("app", {"on_user_left": lambda u: None})
    clock.advance(180)
    await alice.client.wait_closed()
    assert [n for n in alice.recorder.names() if n != "on_media_device_list_updated"] == [
        "on_session_timeout"
    ]
    assert alice.client.registry.ids() == []  # §E.6 (iii)
    assert "on_call_ended" not in alice.recorder.names()
    assert backend.rooms.participant_count("s1") == 0
    # §E.6 (v), §E.7: the ended screen stays until Leave now, which presses "end".
    assert alice.view.mounted and alice.view.idle_state is IdleState.EXPIRED
    alice.view.press_leave_now()
    assert alice.recorder.names()[-1] == "on_call_end_button_pressed"
    assert not alice.view.mounted


async def test_leave_now_during_the_countdown(join: Join) -> None:
    clock = VirtualClock()
    alice = await join("alice", clock=clock)
    clock.advance(125)
    alice.view.press_leave_now()
    await alice.client.wait_closed()
    names = [n for n in alice.recorder.names() if n != "on_media_device_list_updated"]
    assert names == ["on_call_end_button_pressed"]
    assert not alice.view.mounted


async def test_a_join_cancels_the_prompt_and_leaving_rearms_it(join: Join) -> None:
    clock = VirtualClock()
    alice = await join("alice", clock=clock)
    clock.advance(130)
    assert alice.view.idle_state is IdleState.PROMPT
    bob = await join("bob")
    await alice.recorder.wait_for("on_user_joined")
    assert alice.view.idle_state is IdleState.OFF  # K15: the countdown goes too
    clock.advance(600)
    assert alice.client.session is not None and alice.client.session.active
    bob.client.end_session()
    await alice.recorder.wait_for("on_call_ended")
    assert alice.view.idle_state is IdleState.ARMED
    clock.advance(120)
    assert alice.view.idle_state is IdleState.PROMPT


async def test_an_expiring_participant_is_seen_leaving_by_the_others(join: Join) -> None:
    clock = VirtualClock()
    alice = await join("alice", clock=clock)
    bob = await join("bob", clock=clock)
    await alice.recorder.wait_for("on_user_joined")
    bob.client.end_session()
    await alice.recorder.wait_for("on_call_ended")
    carol = await join("carol")
    await carol.recorder.wait_for("on_user_joined")
    carol.client.end_session()
    await alice.recorder.wait_for("on_call_ended", 2)
    clock.advance(180)
    await alice.client.wait_closed()
    assert alice.recorder.names()[-1] == "on_session_timeout"


async def test_device_list_is_debounced_on_the_clock(join: Join) -> None:
    clock = VirtualClock()
    alice = await join("alice", clock=clock)
    assert alice.recorder.of("on_media_device_list_updated") == []
    clock.advance(0.5)
    (initial,) = alice.recorder.of("on_media_device_list_updated")
    assert [d.label for d in initial[0].video_input_devices] == ["Front Camera", "Back Camera"]
    microphones = alice.client.get_audio_input_devices()
    assert [m.active for m in microphones] == [True, False]

    # A burst of changes gives one event, with the last state (§I).
    alice.client.set_audio_input_device(microphones[1].device_id)
    alice.client.set_audio_output_device(alice.client.get_audio_output_devices()[1].device_id)
    assert alice.client.get_audio_input_devices()[1].active  # getters see it at once
    clock.advance(0.4)
    assert len(alice.recorder.of("on_media_device_list_updated")) == 1
    clock.advance(0.1)
    updates = alice.recorder.of("on_media_device_list_updated")
    assert len(updates) == 2
    assert updates[1][0].audio_input_devices[1].active and updates[1][0].audio_output_devices[1].active


async def test_unknown_device_reports_generic_exception_k39(join: Join) -> None:
    alice = await join("alice")
    alice.client.set_video_input_device("no-such-camera")
    error = (await alice.recorder.wait_for("on_error"))[0]
    assert error.code == "GENERIC_EXCEPTION"
    alice.client.set_video_input_device("")  # not a non-empty string: silently ignored
    assert len(alice.recorder.of("on_error")) == 1


async def test_hot_plug_and_switch_camera_reach_the_media(join: Join) -> None:
    clock = VirtualClock()
    devices = FakeDevices()
    alice = await join("alice", clock=clock, devices=devices)
    bob = await join("bob")
    clock.advance(0.5)
    devices.plug(FakeDevices.make("audioinput", "USB Microphone"))
    clock.advance(0.5)
    latest = alice.recorder.of("on_media_device_list_updated")[-1][0]
    assert "USB Microphone" in [d.label for d in latest.audio_input_devices]

    def camera_device() -> int | None:
        stream = bob.evidence.stream("alice", "camera")
        return None if stream is None or stream.last_tag is None else SourceTag.unpack(stream.last_tag)[2]

    await bob.evidence.wait_for(lambda: camera_device() == 0, 20)
    alice.client.switch_camera()  # front ("user") → back ("environment")
    active = devices.active("videoinput")
    assert active is not None and active.facing_mode == "environment"
    await bob.evidence.wait_for(lambda: camera_device() == 1, 20)
    clock.advance(0.5)
    assert alice.recorder.of("on_media_device_list_updated")[-1][0].video_input_devices[1].active


async def test_switching_microphone_and_speaker_reaches_the_media(join: Join) -> None:
    """§I: the setters switch the live source and sink, not only the list."""
    alice, bob = await join("alice"), await join("bob")
    await bob.evidence.wait_for(lambda: "alice" in bob.evidence.heard(), 20)
    heard = bob.evidence.stream("alice", "mic")
    assert heard is not None
    # Past the decoder's fade-in (the first frames are up to 10 dB down): the tone at full level.
    await bob.evidence.wait_for(lambda: heard.frames >= 10 and heard.level_dbfs > -20, 20)
    before = heard.level_dbfs

    microphones = alice.client.get_audio_input_devices()
    alice.client.set_audio_input_device(microphones[1].device_id)
    # The second microphone picks the tone up 6 dB quieter: bob measures that.
    await bob.evidence.wait_for(lambda: heard.level_dbfs < before - 4, 20)
    assert "alice" in bob.evidence.heard()

    speakers = bob.client.get_audio_output_devices()
    assert bob.evidence.played_on.get(speakers[1].device_id, 0) == 0
    bob.client.set_audio_output_device(speakers[1].device_id)
    await bob.evidence.wait_for(lambda: bob.evidence.played_on.get(speakers[1].device_id, 0) >= 25, 20)
    played_before = bob.evidence.played_on[speakers[0].device_id]
    await bob.evidence.wait_for(lambda: bob.evidence.played_on[speakers[1].device_id] >= 50, 20)
    assert bob.evidence.played_on[speakers[0].device_id] == played_before
