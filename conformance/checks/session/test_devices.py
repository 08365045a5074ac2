"""§I: the 500 ms debounce of onMediaDeviceListUpdated at its boundary and under bursts —
several changes in one window make one update, the last state (weakness classes 4, 8)."""

from __future__ import annotations

from conformance.api import Client, Sut
from conformance.check import SHOULD, check


def settled(sut: Sut) -> Client:
    """A participant whose initial device list has been delivered."""
    alice = sut.client("alice")
    alice.join("s1")
    sut.advance(0.5)
    alice.wait("onMediaDeviceListUpdated")
    return alice


def updates(alice: Client) -> int:
    return len(alice.events(callback="onMediaDeviceListUpdated"))


def labels(alice: Client, key: str = "audioInputDevices") -> list[str]:
    return [d["label"] for d in alice.events(callback="onMediaDeviceListUpdated")[-1].payload[key]]


@check("I", SHOULD, "virtualClock", "devices", items=("I",), closes=(4,))
def test_an_update_comes_500_ms_after_the_change_not_before(sut: Sut) -> None:
    alice = settled(sut)
    alice.harness("plugDevice", kind="audioinput", label="USB Microphone")
    sut.advance(0.49)
    assert updates(alice) == 1
    sut.advance(0.01)
    alice.wait("onMediaDeviceListUpdated", 2)
    assert "USB Microphone" in labels(alice)


@check("I", SHOULD, "virtualClock", "devices", items=("I",), closes=(8,))
def test_a_burst_of_changes_makes_one_update_with_the_last_state(sut: Sut) -> None:
    """Each change restarts the window: plugs at 0 and 0.3 s → nothing at 0.5 s, one update
    at 0.8 s listing both; an unplug inside a window leaves no trace of the device."""
    alice = settled(sut)
    alice.harness("plugDevice", kind="audioinput", label="USB Microphone")
    sut.advance(0.3)
    camera = alice.harness("plugDevice", kind="videoinput", label="USB Camera")["deviceId"]
    sut.advance(0.2)
    assert updates(alice) == 1
    sut.advance(0.3)
    alice.wait("onMediaDeviceListUpdated", 2)
    assert "USB Microphone" in labels(alice)
    assert "USB Camera" in labels(alice, "videoInputDevices")
    alice.harness("plugDevice", kind="audiooutput", label="Headset")
    sut.advance(0.1)
    alice.harness("unplugDevice", deviceId=camera)
    sut.advance(0.5)
    alice.wait("onMediaDeviceListUpdated", 3)
    sut.advance(5)
    assert updates(alice) == 3
    assert "Headset" in labels(alice, "audioOutputDevices")
    assert "USB Camera" not in labels(alice, "videoInputDevices")


@check("I", SHOULD, "virtualClock", items=("A.2", "I"))
def test_switch_camera_brings_one_device_list_update(sut: Sut) -> None:
    """§A.2 #14: switchCamera re-acquires the camera facing the other way and re-enumerates
    the devices: one onMediaDeviceListUpdated 500 ms later, one camera in it active. (K36: a
    participant with no camera facing the other way may get nothing; the harness's default
    devices, the reference's among them, have a front and a back camera.)"""
    alice = settled(sut)
    alice.calls("switchCamera")
    sut.advance(0.5)
    update = alice.wait("onMediaDeviceListUpdated", 2).payload
    assert sum(1 for d in update["videoInputDevices"] if d["active"]) == 1, update
    sut.advance(5)
    assert updates(alice) == 2
