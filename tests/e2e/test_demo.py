"""The README's main command, in-process: ``callsim demo`` with two participants."""

from __future__ import annotations

import pytest

from simulator.crowd.demo import run_demo

pytestmark = pytest.mark.e2e


async def test_demo_measures_what_each_participant_heard_and_saw() -> None:
    result = await run_demo(participants=3, seed=1)
    uids = list(result.events)
    assert len(uids) == 3
    for uid in uids:
        assert result.heard[uid] == set(uids) - {uid}
    muted = uids[1]
    assert all(muted not in heard for heard in result.heard_after_mute.values())
    assert all(n >= 3 for n in result.screen_frames.values())

    # The demo runs on the system clock: a debounced device-list update may land anywhere.
    def without_device_lists(names: list[str]) -> list[str]:
        return [n for n in names if n != "on_media_device_list_updated"]

    events = {uid: without_device_lists(names) for uid, names in result.events.items()}
    assert events[uids[0]][-1] == "on_call_end_button_pressed"
    assert events[uids[-1]][-3:] == ["on_user_left", "on_user_list_updated", "on_call_ended"]
    assert "on_user_muted" in events[uids[0]]
    # The ringing call (§F.6, §F.7): the first rang the second, both were in media, it ended.
    caller, callee = uids[0], uids[1]
    ringing = {uid: without_device_lists(names) for uid, names in result.ringing_events.items()}
    assert ringing[caller] == [
        "on_outgoing_call_accepted",
        "on_user_joined",
        "on_user_list_updated",
        "on_call_end_button_pressed",
    ]
    assert result.ringing_events[callee][:2] == [
        "on_incoming_call_received",
        "on_call_ended_message_received",
    ]
    assert result.ringing_events[callee][-3:] == ["on_user_left", "on_user_list_updated", "on_call_ended"]
    assert result.ringing_status == "ended"
    assert result.ringing_in_media > 0


def test_the_cli_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main

    with pytest.raises(SystemExit):
        main(["demo", "--participants", "1"])
    assert "invalid choice" in capsys.readouterr().err
