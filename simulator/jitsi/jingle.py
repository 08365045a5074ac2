"""Jingle (XEP-0166/0167/0176/0320, XEP-0339 sources) as the published SDK speaks it.

The focus describes a participant's media session to lib-jitsi-meet in Jingle, not SDP:
``session-initiate`` (the bridge's transport, the codecs the SFU forwards, everyone else's
sources), ``session-accept`` (the client's transport and sources), ``source-add`` and
``source-remove`` as others come, go or share screens, ``transport-info`` and
``session-terminate``. This module is the one place that reads and writes that XML: a
:class:`Jingle` is parsed from an ``<jingle>`` element and written back to one; nothing
else in the project touches Jingle's namespaces.

Only what the SFU needs is modelled: media contents (audio, video) on one bundled ICE-UDP
transport with DTLS, payload types with their parameters and feedback, header extensions,
and sources (SSRC, source name, video type, owner, msid) with their groups (``SIM``, ``FID``).
Unknown elements are ignored, as XMPP asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from xml.etree import ElementTree as ET

__all__ = [
    "NS_JINGLE",
    "Candidate",
    "Content",
    "Fingerprint",
    "Jingle",
    "JingleError",
    "PayloadType",
    "Source",
    "SourceGroup",
    "Transport",
]

NS_JINGLE: Final = "urn:xmpp:jingle:1"
NS_RTP: Final = "urn:xmpp:jingle:apps:rtp:1"
NS_RTCP_FB: Final = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0"
NS_HDREXT: Final = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"
NS_SSMA: Final = "urn:xmpp:jingle:apps:rtp:ssma:0"
NS_ICE_UDP: Final = "urn:xmpp:jingle:transports:ice-udp:1"
NS_DTLS: Final = "urn:xmpp:jingle:apps:dtls:0"
NS_GROUPING: Final = "urn:xmpp:jingle:apps:grouping:0"
NS_COLIBRI: Final = "http://jitsi.org/protocol/colibri"
NS_JITMEET: Final = "http://jitsi.org/jitmeet"


class JingleError(ValueError):
    """A Jingle element the focus cannot use; the message says which part and why."""


@dataclass
class PayloadType:
    """One codec of a content (XEP-0167 ``<payload-type>``)."""

    id: int
    name: str
    clockrate: int
    channels: int = 1
    parameters: dict[str, str] = field(default_factory=dict)
    feedback: list[tuple[str, str]] = field(default_factory=list)
    """``rtcp-fb`` entries as (type, subtype); subtype may be empty."""


@dataclass
class Source:
    """One SSRC a participant sends (XEP-0339), with Jitsi's source name and owner."""

    ssrc: int
    name: str = ""
    """lib-jitsi-meet's source name: ``<endpoint>-a0``, ``<endpoint>-v0`` (camera), ``-v1``…"""
    video_type: str = ""
    """``camera`` or ``desktop`` for video sources."""
    owner: str = ""
    """The sender's occupant JID (``<room>@conference.<host>/<endpoint>``); empty from clients."""
    msid: str = ""


@dataclass
class SourceGroup:
    """``SIM`` (simulcast layers, the lowest first) or ``FID`` (a stream and its RTX)."""

    semantics: str
    ssrcs: list[int]


@dataclass
class Fingerprint:
    hash: str
    value: str
    setup: str


@dataclass
class Candidate:
    """One ICE candidate (XEP-0176 ``<candidate>``)."""

    foundation: str
    component: int
    protocol: str
    priority: int
    ip: str
    port: int
    type: str
    generation: int = 0
    id: str = ""


@dataclass
class Transport:
    """The bundled ICE-UDP transport with its DTLS fingerprint and the bridge channel's URL."""

    ufrag: str
    pwd: str
    fingerprints: list[Fingerprint] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    websocket: str = ""
    """The colibri WebSocket (``<web-socket url>``): the bridge channel."""
    rtcp_mux: bool = True


@dataclass
class Content:
    """One media content: ``audio`` or ``video``."""

    name: str
    senders: str = "both"
    payload_types: list[PayloadType] = field(default_factory=list)
    header_extensions: list[tuple[int, str]] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    groups: list[SourceGroup] = field(default_factory=list)
    transport: Transport | None = None


@dataclass
class Jingle:
    """One ``<jingle>`` element."""

    action: str
    sid: str
    initiator: str = ""
    responder: str = ""
    contents: list[Content] = field(default_factory=list)
    bundle: list[str] = field(default_factory=list)
    """Content names in the BUNDLE group."""
    reason: str = ""
    """``session-terminate``'s reason condition (e.g. ``success``)."""

    def content(self, name: str) -> Content | None:
        return next((c for c in self.contents if c.name == name), None)

    @property
    def transport(self) -> Transport | None:
        """The bundled transport: the first content's that has one."""
        return next((c.transport for c in self.contents if c.transport is not None), None)

    # --- reading ----------------------------------------------------------------------------

    @classmethod
    def parse(cls, element: ET.Element) -> Jingle:
        """Read a ``<jingle xmlns='urn:xmpp:jingle:1'>`` element (JingleError if malformed)."""
        if element.tag != f"{{{NS_JINGLE}}}jingle":
            raise JingleError(f"not a jingle element: {element.tag}")
        action, sid = element.get("action", ""), element.get("sid", "")
        if not action or not sid:
            raise JingleError("jingle needs an action and a sid")
        jingle = cls(action, sid, element.get("initiator", ""), element.get("responder", ""))
        try:
            jingle.contents = [_read_content(c) for c in element.findall(f"{{{NS_JINGLE}}}content")]
        except (TypeError, ValueError) as exc:
            raise JingleError(f"{action}: {exc}") from None
        group = element.find(f"{{{NS_GROUPING}}}group")
        if group is not None and group.get("semantics") == "BUNDLE":
            jingle.bundle = [c.get("name", "") for c in group.findall(f"{{{NS_GROUPING}}}content")]
        reason = element.find(f"{{{NS_JINGLE}}}reason")
        if reason is not None and len(reason):
            jingle.reason = reason[0].tag.rpartition("}")[2]
        return jingle

    # --- writing ----------------------------------------------------------------------------

    def to_xml(self) -> ET.Element:
        element = ET.Element(f"{{{NS_JINGLE}}}jingle", action=self.action, sid=self.sid)
        if self.initiator:
            element.set("initiator", self.initiator)
        if self.responder:
            element.set("responder", self.responder)
        if self.bundle:
            group = ET.SubElement(element, f"{{{NS_GROUPING}}}group", semantics="BUNDLE")
            for name in self.bundle:
                ET.SubElement(group, f"{{{NS_GROUPING}}}content", name=name)
        for content in self.contents:
            element.append(_write_content(content))
        if self.reason:
            reason = ET.SubElement(element, f"{{{NS_JINGLE}}}reason")
            ET.SubElement(reason, f"{{{NS_JINGLE}}}{self.reason}")
        return element


def _read_content(element: ET.Element) -> Content:
    content = Content(element.get("name", ""), element.get("senders", "both"))
    description = element.find(f"{{{NS_RTP}}}description")
    if description is not None:
        for pt in description.findall(f"{{{NS_RTP}}}payload-type"):
            content.payload_types.append(
                PayloadType(
                    int(pt.get("id", "")),
                    pt.get("name", ""),
                    int(pt.get("clockrate", "0") or 0),
                    int(pt.get("channels", "1") or 1),
                    {p.get("name", ""): p.get("value", "") for p in pt.findall(f"{{{NS_RTP}}}parameter")},
                    [
                        (fb.get("type", ""), fb.get("subtype", ""))
                        for fb in pt.findall(f"{{{NS_RTCP_FB}}}rtcp-fb")
                    ],
                )
            )
        content.header_extensions = [
            (int(ext.get("id", "")), ext.get("uri", ""))
            for ext in description.findall(f"{{{NS_HDREXT}}}rtp-hdrext")
        ]
        content.sources = [_read_source(s) for s in description.findall(f"{{{NS_SSMA}}}source")]
        content.groups = [
            SourceGroup(
                g.get("semantics", ""), [int(s.get("ssrc", "")) for s in g.findall(f"{{{NS_SSMA}}}source")]
            )
            for g in description.findall(f"{{{NS_SSMA}}}ssrc-group")
        ]
    transport = element.find(f"{{{NS_ICE_UDP}}}transport")
    if transport is not None:
        content.transport = _read_transport(transport)
    return content


def _read_source(element: ET.Element) -> Source:
    parameters = {p.get("name", ""): p.get("value", "") for p in element.findall(f"{{{NS_SSMA}}}parameter")}
    info = element.find(f"{{{NS_JITMEET}}}ssrc-info")
    return Source(
        int(element.get("ssrc", "")),
        element.get("name", ""),
        element.get("videoType", ""),
        "" if info is None else info.get("owner", ""),
        parameters.get("msid", ""),
    )


def _read_transport(element: ET.Element) -> Transport:
    transport = Transport(element.get("ufrag", ""), element.get("pwd", ""))
    transport.fingerprints = [
        Fingerprint(f.get("hash", ""), (f.text or "").strip(), f.get("setup", "actpass"))
        for f in element.findall(f"{{{NS_DTLS}}}fingerprint")
    ]
    transport.candidates = [
        Candidate(
            c.get("foundation", ""),
            int(c.get("component", "1")),
            c.get("protocol", "udp").lower(),
            int(c.get("priority", "0")),
            c.get("ip", ""),
            int(c.get("port", "0")),
            c.get("type", "host"),
            int(c.get("generation", "0")),
            c.get("id", ""),
        )
        for c in element.findall(f"{{{NS_ICE_UDP}}}candidate")
    ]
    websocket = element.find(f"{{{NS_COLIBRI}}}web-socket")
    if websocket is not None:
        transport.websocket = websocket.get("url", "")
    transport.rtcp_mux = element.find(f"{{{NS_ICE_UDP}}}rtcp-mux") is not None
    return transport


def _write_content(content: Content) -> ET.Element:
    element = ET.Element(
        f"{{{NS_JINGLE}}}content", name=content.name, creator="initiator", senders=content.senders
    )
    description = ET.SubElement(element, f"{{{NS_RTP}}}description", media=content.name)
    for pt in content.payload_types:
        attributes = {"id": str(pt.id), "name": pt.name, "clockrate": str(pt.clockrate)}
        if pt.channels != 1:
            attributes["channels"] = str(pt.channels)
        payload = ET.SubElement(description, f"{{{NS_RTP}}}payload-type", attributes)
        for name, value in pt.parameters.items():
            ET.SubElement(payload, f"{{{NS_RTP}}}parameter", name=name, value=value)
        for kind, subtype in pt.feedback:
            feedback = ET.SubElement(payload, f"{{{NS_RTCP_FB}}}rtcp-fb", type=kind)
            if subtype:
                feedback.set("subtype", subtype)
    for number, uri in content.header_extensions:
        ET.SubElement(description, f"{{{NS_HDREXT}}}rtp-hdrext", id=str(number), uri=uri)
    for source in content.sources:
        description.append(_write_source(source))
    for group in content.groups:
        written = ET.SubElement(description, f"{{{NS_SSMA}}}ssrc-group", semantics=group.semantics)
        for ssrc in group.ssrcs:
            ET.SubElement(written, f"{{{NS_SSMA}}}source", ssrc=str(ssrc))
    if content.payload_types:
        ET.SubElement(description, f"{{{NS_RTP}}}rtcp-mux")
    if content.transport is not None:
        element.append(_write_transport(content.transport))
    return element


def _write_source(source: Source) -> ET.Element:
    element = ET.Element(f"{{{NS_SSMA}}}source", ssrc=str(source.ssrc))
    if source.name:
        element.set("name", source.name)
    if source.video_type:
        element.set("videoType", source.video_type)
    if source.msid:
        ET.SubElement(element, f"{{{NS_SSMA}}}parameter", name="msid", value=source.msid)
    if source.owner:
        ET.SubElement(element, f"{{{NS_JITMEET}}}ssrc-info", owner=source.owner)
    return element


def _write_transport(transport: Transport) -> ET.Element:
    element = ET.Element(f"{{{NS_ICE_UDP}}}transport", ufrag=transport.ufrag, pwd=transport.pwd)
    if transport.websocket:
        ET.SubElement(element, f"{{{NS_COLIBRI}}}web-socket", url=transport.websocket)
    if transport.rtcp_mux:
        ET.SubElement(element, f"{{{NS_ICE_UDP}}}rtcp-mux")
    for fingerprint in transport.fingerprints:
        written = ET.SubElement(
            element, f"{{{NS_DTLS}}}fingerprint", hash=fingerprint.hash, setup=fingerprint.setup
        )
        written.text = fingerprint.value
    for candidate in transport.candidates:
        written = ET.SubElement(
            element,
            f"{{{NS_ICE_UDP}}}candidate",
            foundation=candidate.foundation,
            component=str(candidate.component),
            protocol=candidate.protocol,
            priority=str(candidate.priority),
            ip=candidate.ip,
            port=str(candidate.port),
            type=candidate.type,
            generation=str(candidate.generation),
            network="0",
        )
        if candidate.id:
            written.set("id", candidate.id)
    return element
