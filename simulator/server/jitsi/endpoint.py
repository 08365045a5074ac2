"""The bridge's side of one XMPP participant: one bundled ICE + DTLS transport, both ways.

A Jitsi-style client (the published SDK) gets its media session from the focus in Jingle,
not SDP (:mod:`~simulator.jitsi.jingle`), so nothing here needs an SDP peer
connection: the endpoint has an ORTC transport (:class:`~simulator.media.ortc.IceDtlsTransport`,
controlling as the offerer, hence the DTLS server: the focus offers ``actpass`` and the
browser answers ``active``) and hands it, connected, to an
:class:`~simulator.media.rtp.RtpLink`, the SFU's own RTP path.
Then it is an SFU member like a native participant:

* **publish** — each source the client announces (``session-accept``, ``source-add``)
  feeds a :class:`~simulator.server.forwarder.Forwarder`: the microphone, the camera with
  its simulcast layers (``SIM`` group, lowest first) and their retransmission streams
  (``FID``), and a screen share (``videoType='desktop'``);
* **subscribe** — every other member's forwarders reach it through
  :class:`~simulator.server.forwarder.Outlet`\\ s on SSRCs the bridge picks, which the focus
  announces to the client as sources owned by their sender (``source-add`` /
  ``source-remove``): one continuous stream per remote source, one layer of a simulcast
  camera, in the payload types of the bridge's offer. No renegotiation of a transport is
  ever needed: the client adds and removes receivers from the announced sources.

Feedback both ways: receiver reports and REMB to the client as a publisher
(:mod:`~simulator.server.feedback`), its PLIs and NACKs as a subscriber to the publishers.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiortc import RTCDtlsFingerprint, RTCIceCandidate, RTCIceParameters
from aiortc.rtp import RtcpPsfbPacket, RtcpRtpfbPacket

from simulator.jitsi.colibri import Constraints, sender_source_constraints
from simulator.jitsi.jingle import (
    Candidate,
    Content,
    Fingerprint,
    PayloadType,
    Source,
    Transport,
)
from simulator.media.description import fresh_ssrcs
from simulator.media.ortc import IceDtlsTransport, RemoteTransport
from simulator.media.rtp import PSFB_PLI, RTPFB_NACK, RtpLink, header, parse_rtcp, unwrap_retransmission
from simulator.server.feedback import REPORT_INTERVAL, PublisherFeedback
from simulator.server.forwarder import SFU_RTCP_SSRC, Forwarder, Outlet
from simulator.server.rooms import Participant, Room
from simulator.tasks import TaskSet

__all__ = ["OFFERED_CODECS", "PLACEHOLDER_SOURCES", "Endpoint", "RemoteSource"]

logger = logging.getLogger(__name__)

PSFB_FIR: Final = 4
AUDIO_PT: Final = 111
VIDEO_PT: Final = 100
RTX_PT: Final = 96

OFFERED_CODECS: Final = {
    "audio": [
        PayloadType(AUDIO_PT, "opus", 48000, 2, {"minptime": "10", "useinbandfec": "1"}),
    ],
    "video": [
        PayloadType(
            VIDEO_PT,
            "VP8",
            90000,
            1,
            {},
            [("ccm", "fir"), ("nack", ""), ("nack", "pli"), ("goog-remb", "")],
        ),
        PayloadType(RTX_PT, "rtx", 90000, 1, {"apt": str(VIDEO_PT)}),
    ],
}
"""What the focus offers: what the SFU forwards (Opus; VP8 with RTX). Chromium then sends
nothing else, and a client that cannot use these fails its session-accept, never silently.
The published SDK prefers VP9, which it would send in SVC layers the forwarder cannot
select: it is left out, as H264 is. Feedback is REMB (:mod:`~simulator.server.feedback`);
transport-wide congestion control is not offered, since the bridge sends no TCC reports
and a browser that negotiated it would wait for them."""

PLACEHOLDER_SOURCES: Final = {
    "audio": Source(SFU_RTCP_SSRC, name="jvb-a0", owner="jvb", msid="mixedmslabel mixedlabelaudio0"),
    "video": Source(2, name="jvb-v0", owner="jvb", msid="mixedmslabel mixedlabelvideo0"),
}
"""The bridge's own sources, first in each content of every ``session-initiate`` (never in a
source change), as a Jitsi bridge announces them. lib-jitsi-meet makes the first m-line of each
kind from them; their stream ID ``mixedmslabel`` is the one it skips. Without them a client
alone in a room (or a companion, which receives nothing) gets m-lines with no SSRC: Chromium
makes tracks of its own for them, and lib-jitsi-meet logs "No SSRC lines found in remote SDP"
then, when the first real sources come, "remote track removal failed". Nothing is ever sent
on these SSRCs (1 is also the SFU's RTCP sender; :func:`fresh_ssrcs` gives neither)."""

SOURCE_SUFFIX: Final[dict[str, str]] = {"mic": "a0", "camera": "v0", "screen": "v1"}
"""lib-jitsi-meet's source names: ``<endpoint>-a0`` (audio), ``-v0`` (camera), ``-v1`` (a share)."""


@dataclass(eq=False)
class RemoteSource:
    """Another member's stream as this client receives it: the bridge's SSRC for it."""

    owner: str
    """The sender's endpoint ID (its participant ID, its MUC nick)."""
    source: str
    """``mic``, ``camera`` or ``screen``."""
    ssrc: int
    outlet: Outlet
    forwarder: Forwarder

    @property
    def kind(self) -> str:
        return "audio" if self.source == "mic" else "video"

    def describe(self, muc: str) -> Source:
        """The Jingle source the client is told of (name, owner, msid, video type): the
        sender's own, or the one its forwarder is announced as (a companion's screen)."""
        owner, name = self.forwarder.announced_as or (
            self.owner,
            f"{self.owner}-{SOURCE_SUFFIX[self.source]}",
        )
        return Source(
            self.ssrc,
            name=name,
            video_type="" if self.source == "mic" else ("desktop" if self.source == "screen" else "camera"),
            owner=f"{muc}/{owner}",
            msid=f"{name} {name}-track",
        )


SENDER_FLOOR: Final = 180
"""The least a publisher is asked to keep sending of its camera (its lowest layer)."""


SourcesChanged = Callable[[list[RemoteSource], list[RemoteSource]], None]
"""Told ``(added, removed)`` when this client's set of remote sources changes (the focus
turns it into ``source-add`` / ``source-remove``)."""


class Endpoint:
    """The bridge's transport and streams with one XMPP participant."""

    def __init__(
        self, participant: Participant, room: Room, on_sources: SourcesChanged, *, receives: bool = True
    ) -> None:
        self._participant = participant
        self.name = participant.participant_id
        """The endpoint ID: the participant's ID, its MUC nick."""
        self.room = room
        self._on_sources = on_sources
        self._tasks = TaskSet(f"bridge:{participant.participant_id}")
        self._transport = IceDtlsTransport(controlling=True)  # the Jingle session's offerer
        self._link: RtpLink | None = None
        self.connected = asyncio.Event()
        self.forwarders: dict[str, Forwarder] = {}
        self._by_ssrc: dict[int, tuple[Forwarder, int]] = {}
        """A publisher SSRC (each layer's) → its forwarder and layer."""
        self._by_rtx: dict[int, tuple[Forwarder, int]] = {}
        self.remote: dict[tuple[str, str], RemoteSource] = {}
        self._by_outlet_ssrc: dict[int, RemoteSource] = {}
        self._feedback = PublisherFeedback({}, asyncio.get_running_loop().time, remb=True)
        self.counts: collections.Counter[str] = collections.Counter()
        self.constraints = Constraints()
        """What this client asked to receive (its bridge channel's ``ReceiverVideoConstraints``)."""
        self.sender_limit: int | None = None
        """The last ``SenderSourceConstraints`` height sent to this client for its camera."""
        self.channel: Callable[[dict[str, object]], None] | None = None
        """Sends a message on this client's bridge channel, while it is open."""
        self.receives = receives
        """False for the published SDK's screen-share companion: it publishes a screen only,
        and receives no media, no source and no bridge-channel message from anyone."""
        self._closed = False
        self.media_lost: str | None = None

    # --- transport --------------------------------------------------------------------------

    async def allocate(self, websocket: str) -> Transport:
        """Gather the bridge's candidates; the transport the focus offers in session-initiate.

        ConnectionError if the endpoint was closed meanwhile (its member left while it gathered):
        the sockets gathering opened are closed again."""
        local = await self._transport.gather()
        if self._closed:  # closing, its transport not stopped yet: that stop takes the sockets
            raise ConnectionError("the endpoint closed while it gathered")
        return Transport(
            local.ufrag,
            local.pwd,
            fingerprints=[Fingerprint(f.algorithm, f.value, "actpass") for f in local.fingerprints],
            candidates=[
                Candidate(c.foundation, c.component, c.protocol, c.priority, c.ip, c.port, c.type, id=f"c{n}")
                for n, c in enumerate(local.candidates)
            ],
            websocket=websocket,
        )

    def connect(self, transport: Transport) -> None:
        """Start ICE and DTLS with the client's transport (from its session-accept)."""
        if not transport.fingerprints:
            raise ValueError("the client's transport has no DTLS fingerprint")
        self._tasks.spawn(self._connect(transport), "connect")

    async def add_candidates(self, candidates: list[Candidate]) -> None:
        """The client's trickled candidates (``transport-info``)."""
        for c in candidates:
            if c.protocol != "udp" or c.ip.endswith(".local"):
                continue  # aioice cannot resolve mDNS names; the client's checks still reach us
            await self._transport.add_remote_candidate(
                RTCIceCandidate(c.component, c.foundation, c.ip, c.port, c.priority, c.protocol, c.type)
            )

    async def _connect(self, transport: Transport) -> None:
        await self.add_candidates(transport.candidates)
        client = RemoteTransport(
            RTCIceParameters(usernameFragment=transport.ufrag, password=transport.pwd),
            fingerprints=[RTCDtlsFingerprint(f.hash, f.value) for f in transport.fingerprints],
        )
        if not await self._transport.connect(client):
            if self._transport.failure is not None:
                self._media_lost(self._transport.failure)
            return
        self._link = RtpLink(self._transport.dtls, on_rtp=self._on_rtp, on_rtcp=self._on_rtcp)
        self.connected.set()
        self._tasks.spawn(self._report_to_publisher(), "publisher-feedback")
        for forwarder in self.forwarders.values():
            forwarder.request_keyframe()
        for remote in self.remote.values():
            remote.forwarder.request_keyframe(remote.outlet.target)
        logger.info("%s: bridge transport connected", self._participant.participant_id)

    def _media_lost(self, reason: str) -> None:
        if self._closed or self.media_lost is not None:
            return
        self.media_lost = reason
        logger.warning("%s: bridge media lost: %s", self._participant.participant_id, reason)

    # --- publish: what the client sends ---------------------------------------------------

    def publish(self, contents: list[Content]) -> list[str]:
        """Take the sources a client announces (session-accept or source-add); returns the
        sources that are new. A source already known is left as it is."""
        now = asyncio.get_running_loop().time
        added: list[str] = []
        for content in contents:
            kind = content.name
            if kind not in ("audio", "video"):
                continue
            fid = {
                g.ssrcs[0]: g.ssrcs[1] for g in content.groups if g.semantics == "FID" and len(g.ssrcs) == 2
            }
            sim = {g.ssrcs[0]: g.ssrcs for g in content.groups if g.semantics == "SIM" and g.ssrcs}
            in_sim = {ssrc for layers in sim.values() for ssrc in layers}
            for source in content.sources:
                ssrc = source.ssrc
                if ssrc in fid.values() or (ssrc in in_sim and ssrc not in sim):
                    continue  # a retransmission stream or a higher layer: part of another source
                which = (
                    "mic" if kind == "audio" else ("screen" if source.video_type == "desktop" else "camera")
                )
                if not self.receives and which != "screen":
                    # A companion carries its owner's screen: its tab audio or any camera is not forwarded.
                    logger.info("%s: a companion's %s is not forwarded", self.name, which)
                    continue
                if which in self.forwarders or ssrc in self._by_ssrc:
                    continue
                layers = sim.get(ssrc, [ssrc])
                forwarder = Forwarder(kind, layers[0], lambda: self._link, now, layers=layers)
                self.forwarders[which] = forwarder
                for index, layer_ssrc in enumerate(layers):
                    self._by_ssrc[layer_ssrc] = (forwarder, index)
                    self._feedback.add_stream(layer_ssrc, kind)
                    if layer_ssrc in fid:
                        self._by_rtx[fid[layer_ssrc]] = (forwarder, index)
                added.append(which)
        if added:
            logger.info("%s: publishes %s", self._participant.participant_id, ", ".join(added))
        return added

    def unpublish(self, contents: list[Content]) -> list[str]:
        """The client stopped sources (source-remove); returns those stopped."""
        gone = {s.ssrc for content in contents for s in content.sources}
        removed: list[str] = []
        for which, forwarder in list(self.forwarders.items()):
            if gone & set(forwarder.layers):
                del self.forwarders[which]
                forwarder.outlets.clear()
                for ssrc in [s for s, (f, _) in self._by_ssrc.items() if f is forwarder]:
                    del self._by_ssrc[ssrc]
                for ssrc in [s for s, (f, _) in self._by_rtx.items() if f is forwarder]:
                    del self._by_rtx[ssrc]
                removed.append(which)
        return removed

    def _on_rtp(self, packet: bytes, arrival: float) -> None:
        link = self._link
        if link is None:
            return
        _, _, seq, _, ssrc = header(packet)
        self._feedback.on_rtp(ssrc, seq, len(packet))
        found = self._by_ssrc.get(ssrc)
        if found is None:
            rtx = self._by_rtx.get(ssrc)
            if rtx is None:
                return
            forwarder, layer = rtx
            clear = link.unprotect(packet)
            original = None if clear is None else unwrap_retransmission(clear, forwarder.layers[layer])
            if original is not None:
                forwarder.forward(original, layer)
            return
        forwarder, layer = found
        forwarder.note_arrival(packet, arrival)
        clear = link.unprotect(packet)
        if clear is not None:
            forwarder.forward(clear, layer)

    async def _report_to_publisher(self) -> None:
        while True:
            await asyncio.sleep(REPORT_INTERVAL)
            if self._link is not None:
                self._link.send_rtcp(self._feedback.report())
            self.review_sender_limit()

    # --- subscribe: what the client receives ----------------------------------------------

    def resync(self) -> None:
        """Bring the client's remote sources up to date with the room (no renegotiation: the
        focus announces what changed)."""
        if self._closed or not self.receives:
            return
        wanted: dict[tuple[str, str], Forwarder] = {}
        for other in self.room.others(self._participant):
            if other.sfu is None:
                continue
            for which, forwarder in other.sfu.forwarders.items():
                if which == "screen" and not other.record.screen_sharing and other.connection is not None:
                    continue
                wanted[(other.participant_id, which)] = forwarder
        removed = [
            self._drop(key)
            for key in list(self.remote)
            if key not in wanted or self.remote[key].forwarder is not wanted[key]
        ]
        added = []
        for key, forwarder in wanted.items():
            if key in self.remote:
                continue
            ssrc = self._fresh_ssrc()
            outlet = Outlet(
                forwarder.kind,
                ssrc,
                AUDIO_PT if forwarder.kind == "audio" else VIDEO_PT,
                lambda: self._link,
                asyncio.get_running_loop().time,
                max_height=self.constraints.height(self._source_name(key, forwarder)),
            )
            remote = RemoteSource(key[0], key[1], ssrc, outlet, forwarder)
            self.remote[key] = remote
            self._by_outlet_ssrc[ssrc] = remote
            forwarder.attach(outlet)
            added.append(remote)
        if added or removed:
            self._on_sources(added, removed)

    def _drop(self, key: tuple[str, str]) -> RemoteSource:
        remote = self.remote.pop(key)
        remote.forwarder.detach(remote.outlet)
        self._by_outlet_ssrc.pop(remote.ssrc, None)
        self.counts["resent"] += remote.outlet.resent
        return remote

    def _fresh_ssrc(self) -> int:
        (ssrc,) = fresh_ssrcs(1, set(self._by_outlet_ssrc) | set(self._by_ssrc) | set(self._by_rtx))
        return ssrc

    def _source_name(self, key: tuple[str, str], forwarder: Forwarder) -> str:
        owner, source = key
        return forwarder.announced_as[1] if forwarder.announced_as else f"{owner}-{SOURCE_SUFFIX[source]}"

    def constrain(self, constraints: Constraints) -> None:
        """The client's receiver constraints (bridge channel): the layer each camera sends it."""
        self.constraints = constraints
        for remote in self.remote.values():
            if remote.kind == "video":
                name = self._source_name((remote.owner, remote.source), remote.forwarder)
                remote.forwarder.set_max_height(remote.outlet, constraints.height(name))

    def review_sender_limit(self) -> None:
        """Tell the client the tallest layer anyone takes of its camera (JVB's
        ``SenderSourceConstraints``): layers nobody receives are not encoded. The lowest layer
        always stays, so a newcomer starts at once."""
        camera = self.forwarders.get("camera")
        if camera is None or self.channel is None:
            return
        wanted = [o.max_height for o in camera.outlets]
        limit = (
            -1
            if any(h is None for h in wanted)
            else max([SENDER_FLOOR, *(h for h in wanted if h is not None)])
        )
        if limit != self.sender_limit:
            self.sender_limit = limit
            self.channel(sender_source_constraints(f"{self.name}-v0", None if limit < 0 else limit))

    def _on_rtcp(self, clear: bytes) -> None:
        self._feedback.on_rtcp(clear)
        for packet in parse_rtcp(clear):
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (PSFB_PLI, PSFB_FIR):
                remote = self._by_outlet_ssrc.get(packet.media_ssrc)
                if remote is not None:
                    self.counts["plis_sent"] += 1
                    remote.forwarder.request_keyframe(remote.outlet.layer)
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTPFB_NACK:
                remote = self._by_outlet_ssrc.get(packet.media_ssrc)
                if remote is not None:
                    self.counts["nacked"] += len(packet.lost)
                    remote.forwarder.on_nack(remote.outlet, packet.lost)

    def media_counts(self) -> dict[str, int]:
        """As :meth:`simulator.server.sfu.SfuPeer.media_counts`."""
        counts = dict(self.counts)
        counts["resent"] = counts.get("resent", 0) + sum(r.outlet.resent for r in self.remote.values())
        counts["keyframes_asked"] = sum(f.keyframes_asked for f in self.forwarders.values())
        counts["nacks_asked"] = sum(f.nacks_asked for f in self.forwarders.values())
        counts["packets_in"] = sum(f.packets_in for f in self.forwarders.values())
        counts["packets_out"] = sum(r.outlet.forwarded for r in self.remote.values())
        return counts

    # --- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop forwarding both ways, then the transports (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self._tasks.aclose()
        for key in list(self.remote):
            self._drop(key)
        for forwarder in self.forwarders.values():
            forwarder.outlets.clear()
        if self._link is not None:
            self._link.close()
        await self._transport.close()
