"""§C, §I: payloads compared whole — every key the contract fixes and every value, in every
list entry (weakness class 1)."""

from __future__ import annotations

import time
from typing import Any

from conformance.api import Sut
from conformance.check import REFERENCE, SHOULD, check

DEVICE_KEYS = {"deviceId", "kind", "label", "groupId", "active"}
DEVICE_LISTS = {
    "audioInputDevices": "audioinput",
    "audioOutputDevices": "audiooutput",
    "videoInputDevices": "videoinput",
}


def identity(uid: str) -> dict[str, str]:
    """What ``Sut.user`` provisions for ``uid``."""
    return {"uid": uid, "name": uid.title(), "avatar": f"https://a.test/{uid}.png"}


def assert_device(entry: Any, kind: str) -> None:
    assert isinstance(entry, dict) and set(entry) == DEVICE_KEYS, entry
    assert entry["kind"] == kind, entry
    assert isinstance(entry["deviceId"], str) and entry["deviceId"], entry
    assert isinstance(entry["label"], str) and isinstance(entry["groupId"], str), entry
    assert isinstance(entry["active"], bool), entry


@check("C", SHOULD, items=("C",), closes=(1,))
def test_on_user_left_is_exactly_uid_name_avatar(sut: Sut) -> None:
    """§C: onUserLeft's payload is exactly ``{uid, name, avatar}``, each the leaver's."""
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    alice.wait_members("alice", "bob")
    bob.end()
    assert alice.wait("onUserLeft").payload == identity("bob")


@check("C", SHOULD, items=("C",), closes=(1,))
def test_every_list_entry_carries_its_participants_identity(sut: Sut) -> None:
    """§C: each onUserListUpdated entry is ``{id, name, avatar, uid}`` with that participant's
    values; the ids are distinct."""
    alice, bob, carol = sut.client("alice"), sut.client("bob"), sut.client("carol")
    for client in (alice, bob, carol):
        client.join("s1")
    alice.wait_members("alice", "bob", "carol")
    entries = alice.events(callback="onUserListUpdated")[-1].payload
    assert sorted(e["uid"] for e in entries) == ["alice", "bob", "carol"]
    for entry in entries:
        assert set(entry) == {"id", "name", "avatar", "uid"}, entry
        assert {k: entry[k] for k in ("uid", "name", "avatar")} == identity(entry["uid"]), entry
        assert entry["id"] not in ("", None), entry
    assert len({e["id"] for e in entries}) == 3


@check("C", SHOULD, items=("C",), closes=(1,))
def test_on_user_joined_carries_identity_and_a_string_joinnedat_k11(sut: Sut) -> None:
    """K11: uid, name and avatar are the joiner's; ``joinnedAt`` (sic) is there, a string."""
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    joined = alice.wait("onUserJoined").payload
    assert {k: joined[k] for k in ("uid", "name", "avatar")} == identity("bob")
    assert isinstance(joined.get("joinnedAt"), str), joined


@check("I", SHOULD, "virtualClock", items=("I",), closes=(1,))
def test_device_list_update_is_exactly_three_lists_of_devices(sut: Sut) -> None:
    """§I: the payload has exactly the three lists, each entry exactly
    ``{deviceId, kind, label, groupId, active}`` of its list's kind."""
    alice = sut.client("alice")
    alice.join("s1")
    sut.advance(0.5)
    update = alice.wait("onMediaDeviceListUpdated").payload
    assert set(update) == set(DEVICE_LISTS)
    for key, kind in DEVICE_LISTS.items():
        assert isinstance(update[key], list), key
        for entry in update[key]:
            assert_device(entry, kind)


@check("I", SHOULD, items=("I",), closes=(1,))
def test_device_getters_return_whole_entries(sut: Sut) -> None:
    """§I: a getter's entries are exactly ``{deviceId, kind, label, groupId, active}``, and the
    same as the last list update says for that kind."""
    alice = sut.client("alice")
    alice.join("s1")
    for method, kind in [
        ("getAudioInputDevices", "audioinput"),
        ("getAudioOutputDevices", "audiooutput"),
        ("getVideoInputDevices", "videoinput"),
    ]:
        devices = alice.calls(method)
        assert devices, method
        for entry in devices:
            assert_device(entry, kind)


@check("C", REFERENCE, items=("C",), closes=(1,))
def test_joinnedat_is_the_join_time_in_milliseconds_k11(sut: Sut) -> None:
    """REFERENCE, K11: ``joinnedAt`` is the join's time, milliseconds since the epoch, as a
    string (the shim runs on this machine: its clock and ours agree within a minute)."""
    alice, bob = sut.client("alice"), sut.client("bob")
    before = time.time() * 1000
    alice.join("s1")
    bob.join("s1")
    joined = alice.wait("onUserJoined").payload
    after = time.time() * 1000
    assert before - 60_000 <= int(joined["joinnedAt"]) <= after + 60_000, (joined, before, after)
