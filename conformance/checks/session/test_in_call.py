"""§A in-call methods, §I devices, §J modes."""

from __future__ import annotations

from conformance.api import Sut
from conformance.check import MUST, SHOULD, check


@check("A", MUST, items=("A.2",))
def test_in_call_methods_are_no_ops_without_a_session_k3(sut: Sut) -> None:
    alice = sut.client("alice")
    calls: list[tuple[str, dict[str, object]]] = [
        ("muteAudio", {"mute": True}),
        ("unMuteAudio", {}),
        ("pauseVideo", {"pause": True}),
        ("resumeVideo", {}),
        ("startScreenShare", {}),
        ("stopScreenShare", {}),
        ("setMode", {"mode": "SPOTLIGHT"}),
        ("switchCamera", {}),
        ("switchToVideoCall", {}),
        ("endSession", {}),
    ]
    for method, params in calls:
        alice.calls(method, **params)
    assert alice.events(None) == []


@check("J", MUST, items=("J", "A.1"), closes=(9, 11))
def test_call_mode_constants(sut: Sut) -> None:
    assert sut.call("Harness.constants")["CALL_MODE"] == {
        "DEFAULT": "DEFAULT",
        "SPOTLIGHT": "SPOTLIGHT",
        "GRID": "TILE",
    }


@check("J", SHOULD, "callView")
def test_set_mode_changes_the_layout_without_events(sut: Sut) -> None:
    alice = sut.client("alice")
    alice.join("s1")
    alice.calls("setMode", mode="SPOTLIGHT")
    assert alice.view()["mode"] == "SPOTLIGHT"
    assert alice.names() == []


@check("A", MUST, "mediaEvidence", items=("A.2", "C"))
def test_screen_share_events_are_local(sut: Sut) -> None:
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    bob.calls("startScreenShare")
    bob.wait("onScreenShareStarted")
    # The share's frames reach alice only after she was told of it: a callback, had there
    # been one for her, would be in her history by now.
    alice.wait_media(minFrames={"bob/screen": 1})
    bob.calls("stopScreenShare")
    bob.wait("onScreenShareStopped")
    assert "onScreenShareStarted" not in alice.names()
    assert "onScreenShareStopped" not in alice.names()


@check("C", SHOULD)
def test_api_mute_emits_nothing_k13(sut: Sut) -> None:
    """Neither at the one muting nor at the others (docs/jitsi.md: so does the published SDK)."""
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    alice.wait("onUserJoined")
    alice.calls("muteAudio", mute=True)
    alice.calls("muteAudio", mute=False)
    alice.end()  # her leave reaches bob after anything her mute sent him
    bob.wait("onCallEnded")
    assert "onUserMuted" not in alice.names()
    assert "onUserMuted" not in bob.names()


@check("C", SHOULD, "callView")
def test_the_mute_button_emits_on_user_muted_locally_k13(sut: Sut) -> None:
    alice = sut.client("alice")
    alice.join("s1")
    alice.calls("muteAudio", mute=True)
    alice.calls("muteAudio", mute=False)
    alice.press("muteAudio")
    event = alice.wait("onUserMuted").payload
    assert event["muted"]["uid"] == event["mutedBy"]["uid"] == "alice"
    assert alice.names().count("onUserMuted") == 1  # the button's, none from the API


@check("I", MUST)
def test_device_getters_list_the_devices(sut: Sut) -> None:
    alice = sut.client("alice")
    alice.join("s1")
    for method, kind in [
        ("getAudioInputDevices", "audioinput"),
        ("getAudioOutputDevices", "audiooutput"),
        ("getVideoInputDevices", "videoinput"),
    ]:
        devices = alice.calls(method)
        assert devices, method
        assert all(d["kind"] == kind and d["deviceId"] for d in devices)


@check("I", SHOULD, "virtualClock")
def test_device_switch_updates_the_list_debounced(sut: Sut) -> None:
    alice = sut.client("alice")
    alice.join("s1")
    sut.advance(0.5)
    alice.wait("onMediaDeviceListUpdated")
    microphones = alice.calls("getAudioInputDevices")
    alice.calls("setAudioInputDevice", deviceId=microphones[-1]["deviceId"])
    sut.advance(0.5)
    update = alice.wait("onMediaDeviceListUpdated", 2).payload
    assert update["audioInputDevices"][-1]["active"] is True


@check("I", SHOULD, "virtualClock", "devices")
def test_hot_plug_reaches_the_list(sut: Sut) -> None:
    alice = sut.client("alice")
    alice.join("s1")
    alice.harness("plugDevice", kind="audioinput", label="USB Microphone")
    sut.advance(0.5)
    update = alice.events(callback="onMediaDeviceListUpdated")[-1].payload
    assert "USB Microphone" in [d["label"] for d in update["audioInputDevices"]]


@check("I", SHOULD)
def test_unknown_device_id_reports_generic_exception_k39(sut: Sut) -> None:
    alice = sut.client("alice")
    alice.join("s1")
    alice.calls("setVideoInputDevice", deviceId="no-such-camera")
    assert alice.wait("onError").payload["code"] == "GENERIC_EXCEPTION"
