"""Media evidence: the in-call methods have their effect on what the others receive."""

from __future__ import annotations

from conformance.api import Client, Sut
from conformance.check import MUST, REFERENCE, SHOULD, check


def pair(sut: Sut, settings: dict[str, object] | None = None) -> tuple[Client, Client]:
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1", settings)
    bob.join("s1", settings)
    return alice, bob


@check("A", MUST, "mediaEvidence", items=("A.2",))
def test_everyone_hears_and_sees_everyone(sut: Sut) -> None:
    alice, bob = pair(sut)
    alice.wait_media(heard=["bob"], minFrames={"bob/camera": 3})
    bob.wait_media(heard=["alice"], minFrames={"alice/camera": 3})


@check("A", MUST, "mediaEvidence", items=("A.2",))
def test_mute_really_silences(sut: Sut) -> None:
    alice, bob = pair(sut)
    alice.wait_media(heard=["bob"])
    bob.calls("muteAudio", mute=True)
    muted = alice.wait_media(notHeard=["bob"])
    # Silence while a second of bob's audio keeps arriving: a stalled stream is not a muted one.
    alice.wait_media(notHeard=["bob"], minAudioFrames={"bob": muted["audioFrames"].get("bob", 0) + 50})
    bob.calls("unMuteAudio")
    alice.wait_media(heard=["bob"])


@check("A", MUST, "mediaEvidence", items=("A.2",))
def test_pause_really_freezes(sut: Sut) -> None:
    alice, bob = pair(sut)
    alice.wait_media(minFrames={"bob/camera": 3})
    bob.calls("pauseVideo", pause=True)
    paused = alice.media()
    audio = paused["audioFrames"].get("bob", 0)
    later = alice.wait_media(minAudioFrames={"bob": audio + 50})  # a second of audio goes by
    assert later["frames"].get("bob/camera", 0) <= paused["frames"].get("bob/camera", 0) + 2
    bob.calls("resumeVideo")
    alice.wait_media(minFrames={"bob/camera": later["frames"].get("bob/camera", 0) + 3})


@check("A", MUST, "mediaEvidence", items=("A.2",))
def test_screen_share_is_a_second_stream(sut: Sut) -> None:
    alice, bob = pair(sut)
    bob.calls("startScreenShare")
    alice.wait_media(minFrames={"bob/screen": 3, "bob/camera": 3})


@check("A", REFERENCE, "mediaEvidence", items=("A.2",))
def test_switch_to_video_starts_video_k14(sut: Sut) -> None:
    """REFERENCE, K14: the reference auto-accepts the request; the published SDK waits for a remote to accept its prompt."""
    alice, bob = pair(sut, {"setIsAudioOnlyCall": True})
    alice.wait_media(heard=["bob"])
    assert alice.media()["frames"].get("bob/camera", 0) == 0
    alice.calls("switchToVideoCall")
    event = bob.wait("onCallSwitchedToVideo").payload
    assert event["sessionId"] == "s1"
    alice.wait_media(minFrames={"bob/camera": 3})
    bob.wait_media(minFrames={"alice/camera": 3})


@check("A", SHOULD, "mediaEvidence", items=("A.2", "B.1"))
def test_start_muted_settings(sut: Sut) -> None:
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1", {"startWithAudioMuted": True, "startWithVideoMuted": True})
    snapshot = alice.wait_media(minAudioFrames={"bob": 30})
    assert "bob" not in snapshot["heard"]
    assert snapshot["frames"].get("bob/camera", 0) == 0
