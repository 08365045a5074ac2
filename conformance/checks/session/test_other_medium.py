"""§A.2 #6, #9: an action on one medium leaves the other alone (weakness class 7).

muteAudio silences the microphone, not the camera; pauseVideo freezes the camera, not the
microphone; and neither reaches the other participant's own media.
"""

from __future__ import annotations

from conformance.api import Client, Sut
from conformance.check import MUST, check


def pair(sut: Sut) -> tuple[Client, Client]:
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    alice.wait_media(heard=["bob"], minFrames={"bob/camera": 3})
    bob.wait_media(heard=["alice"], minFrames={"alice/camera": 3})
    return alice, bob


@check("A", MUST, "mediaEvidence", items=("A.2",), closes=(7,))
def test_mute_audio_keeps_the_video_going(sut: Sut) -> None:
    alice, bob = pair(sut)
    bob.calls("muteAudio", mute=True)
    muted = alice.wait_media(notHeard=["bob"])
    frames = muted["frames"].get("bob/camera", 0)
    alice.wait_media(notHeard=["bob"], minFrames={"bob/camera": frames + 10})
    bob.wait_media(heard=["alice"], minFrames={"alice/camera": 3})  # her own media untouched


@check("A", MUST, "mediaEvidence", items=("A.2",), closes=(7,))
def test_pause_video_keeps_the_audio_going(sut: Sut) -> None:
    alice, bob = pair(sut)
    bob.calls("pauseVideo", pause=True)
    paused = alice.media()
    audio = paused["audioFrames"].get("bob", 0)
    later = alice.wait_media(heard=["bob"], minAudioFrames={"bob": audio + 50})
    assert "bob" in later["heard"]
    bob.wait_media(heard=["alice"])


@check("A", MUST, "mediaEvidence", items=("A.2",), closes=(7,))
def test_unmute_audio_leaves_a_paused_camera_paused(sut: Sut) -> None:
    """Resuming one medium does not resume the other: paused stays paused through an unmute."""
    alice, bob = pair(sut)
    bob.calls("pauseVideo", pause=True)
    bob.calls("muteAudio", mute=True)
    alice.wait_media(notHeard=["bob"])
    bob.calls("unMuteAudio")
    heard = alice.wait_media(heard=["bob"])
    frames = heard["frames"].get("bob/camera", 0)
    later = alice.wait_media(heard=["bob"], minAudioFrames={"bob": heard["audioFrames"].get("bob", 0) + 50})
    assert later["frames"].get("bob/camera", 0) <= frames + 2
