"""The presence lib-jitsi-meet writes, read; and the presence that shows a native participant."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from simulator import protocol
from simulator.jitsi.presence import occupant_presence, read_occupant
from simulator.server.jitsi.prosody import configuration

# As the published SDK sent it (the research capture), in the focus's stream namespace.
SDK_PRESENCE = """<presence xmlns="jabber:component:accept" from="s1@conference.callsim.test/00cbfae4">
<stats-id>Samanta-kk3</stats-id>
<SourceInfo>{"00cbfae4-a0": {"muted": true}, "00cbfae4-v0": {"muted": false}}</SourceInfo>
<nick xmlns="http://jabber.org/protocol/nick">Alice Local</nick><uid>alice</uid>
<avatar-url>https://callsim.test/avatars/alice.png</avatar-url>
<initial_config is_audio_muted="false" is_video_muted="true"/>
<user_object avatar="https://callsim.test/avatars/alice.png" joinnedAt="1796086028090"
 name="Alice Local" uid="alice"/>
</presence>"""


def test_the_sdk_presence_gives_identity_and_mute_state() -> None:
    occupant = read_occupant(ET.fromstring(SDK_PRESENCE), "00cbfae4")
    assert (occupant.uid, occupant.name, occupant.joined_at) == ("alice", "Alice Local", 1796086028090)
    assert occupant.avatar == "https://callsim.test/avatars/alice.png"
    # SourceInfo (what the SDK updates on mute) wins over the initial configuration.
    assert (occupant.audio_muted, occupant.video_muted, occupant.screen_sharing) == (True, False, False)


def test_without_sources_the_older_forms_decide_and_missing_parts_are_neutral() -> None:
    bare = ET.fromstring(
        '<presence xmlns="jabber:client"><SourceInfo>{}</SourceInfo><audiomuted>true</audiomuted>'
        '<initial_config is_audio_muted="false" is_video_muted="true"/></presence>'
    )
    occupant = read_occupant(bare, "n1")
    assert (occupant.uid, occupant.name, occupant.audio_muted, occupant.video_muted) == (
        "n1",
        "n1",
        True,
        True,
    )
    broken = ET.fromstring('<presence xmlns="jabber:client"><SourceInfo>not json</SourceInfo></presence>')
    assert not read_occupant(broken, "n2").audio_muted


def test_a_screen_share_is_a_desktop_source_unmuted() -> None:
    sources = {
        "e-a0": {"muted": False},
        "e-v0": {"muted": True},
        "e-v1": {"muted": False, "videoType": "desktop"},
    }
    presence = ET.fromstring(
        f'<presence xmlns="jabber:client"><SourceInfo>{json.dumps(sources)}</SourceInfo></presence>'
    )
    occupant = read_occupant(presence, "e")
    assert (occupant.video_muted, occupant.screen_sharing) == (True, True)


def test_a_native_participant_is_shown_with_what_the_sdk_reads() -> None:
    record = protocol.ParticipantRecord(
        participant_id="p7", uid="bob", name="Bob", avatar="https://a/b.png", joined_at=42, audio_muted=True
    )
    presence = ET.Element("{jabber:component:accept}presence")
    presence.extend(occupant_presence(record, joining=True))
    # What the SDK writes, the focus reads back the same: one format for both directions.
    occupant = read_occupant(ET.fromstring(ET.tostring(presence)), "p7")
    assert (occupant.uid, occupant.name, occupant.avatar, occupant.joined_at) == (
        "bob",
        "Bob",
        "https://a/b.png",
        42,
    )
    assert (occupant.audio_muted, occupant.video_muted) == (True, False)
    text = ET.tostring(presence, encoding="unicode")
    assert "<stats-id>bob</stats-id>" in text.replace("ns0:", "")
    assert "http://jabber.org/protocol/muc" in text
    assert "http://jabber.org/protocol/muc" not in ET.tostring(
        _wrapped(occupant_presence(record, joining=False)), encoding="unicode"
    )


def _wrapped(children: list[ET.Element]) -> ET.Element:
    presence = ET.Element("{jabber:component:accept}presence")
    presence.extend(children)
    return presence


def test_the_prosody_configuration_keeps_everything_on_loopback_and_quotes_its_secrets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = configuration(
        "callsim.test",
        folder=tmp_path,
        component_port=1,
        http_port=2,
        component_secret='a"b',
        token_secret="c\\d",
    )
    assert 'interfaces = { "127.0.0.1" }' in text
    assert "c2s_ports = { }" in text and "s2s_ports = { }" in text
    assert 'component_secret = "a\\"b"' in text and 'callsim_token_secret = "c\\\\d"' in text
    assert 'Component "conference.callsim.test" "muc"' in text
