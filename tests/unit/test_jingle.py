"""Jingle as the focus reads and writes it: what is written is read back the same, and a
malformed element is a JingleError naming its part (the focus answers it ``bad-request``)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.jitsi.colibri import Constraints, read_constraints
from simulator.jitsi.jingle import (
    NS_JINGLE,
    Candidate,
    Content,
    Fingerprint,
    Jingle,
    JingleError,
    PayloadType,
    Source,
    SourceGroup,
    Transport,
)


def _accept(layers: list[int], rtx: list[int]) -> Jingle:
    transport = Transport(
        "ufrag", "pwd", [Fingerprint("sha-256", "AB:CD", "active")],
        [Candidate("1", 1, "udp", 2130706431, "198.51.100.1", 5000, "host")], "wss://h/colibri-ws/s/e",
    )  # fmt: skip
    video = Content(
        "video",
        payload_types=[PayloadType(100, "VP8", 90000, 1, {}, [("nack", "pli"), ("goog-remb", "")])],
        header_extensions=[(3, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")],
        sources=[Source(s, "e-v0", "camera", "", "m t") for s in layers + rtx],
        groups=[
            SourceGroup("SIM", layers),
            *(SourceGroup("FID", [a, b]) for a, b in zip(layers, rtx, strict=True)),
        ],
        transport=transport,
    )
    audio = Content(
        "audio",
        payload_types=[PayloadType(111, "opus", 48000, 2, {"useinbandfec": "1"})],
        sources=[Source(7, "e-a0", owner="room@conference.h/e", msid="m a")],
        transport=transport,
    )
    return Jingle(
        "session-accept", "sid1", "room@conference.h/focus", "me@h/r", [audio, video], ["audio", "video"]
    )


ssrcs = st.lists(st.integers(1, 2**32 - 1), min_size=3, max_size=3, unique=True)


@given(ssrcs, ssrcs)
def test_what_is_written_is_read_back_the_same(layers: list[int], rtx: list[int]) -> None:
    jingle = _accept(layers, rtx)
    text = ET.tostring(jingle.to_xml())
    assert Jingle.parse(ET.fromstring(text)) == jingle


@pytest.mark.parametrize(
    ("xml", "says"),
    [
        (f'<jingle xmlns="{NS_JINGLE}" sid="s"/>', "action"),
        (f'<jingle xmlns="{NS_JINGLE}" action="source-add"/>', "sid"),
        ('<jingle xmlns="urn:other" action="a" sid="s"/>', "not a jingle"),
        (
            f'<jingle xmlns="{NS_JINGLE}" action="source-add" sid="s"><content name="audio">'
            '<description xmlns="urn:xmpp:jingle:apps:rtp:1"><source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" '
            'ssrc="x"/></description></content></jingle>',
            "source-add",
        ),
        (
            f'<jingle xmlns="{NS_JINGLE}" action="session-accept" sid="s"><content name="video">'
            '<transport xmlns="urn:xmpp:jingle:transports:ice-udp:1"><candidate xmlns="urn:xmpp:jingle:'
            'transports:ice-udp:1" port="many"/></transport></content></jingle>',
            "session-accept",
        ),
    ],
)
def test_a_malformed_element_is_refused_with_the_part_named(xml: str, says: str) -> None:
    with pytest.raises(JingleError, match=says):
        Jingle.parse(ET.fromstring(xml))


@pytest.mark.parametrize(
    ("message", "constraints"),
    [
        (
            {"defaultConstraints": {"maxHeight": 180}, "constraints": {"a-v0": {"maxHeight": 720}}},
            Constraints(180, {"a-v0": 720}),
        ),
        ({"defaultConstraints": {"maxHeight": -1}}, Constraints(None)),
        (
            {"constraints": {"a-v0": {"maxHeight": "tall"}, "b-v0": {"maxHeight": True}}},
            Constraints(None, {"a-v0": None, "b-v0": None}),
        ),
        ({"constraints": ["not", "a", "map"]}, Constraints()),
        ({}, Constraints()),
    ],
)
def test_receiver_constraints_are_read_per_source(
    message: dict[str, object], constraints: Constraints
) -> None:
    read = read_constraints(message)
    assert read == constraints
    assert read.height("a-v0") == constraints.sources.get("a-v0", constraints.default)
