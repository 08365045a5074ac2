"""A virtual participant's media through the XMPP door, on the lean or the full path.

The focus offers the session in Jingle; :class:`JingleMedia` answers it as lib-jitsi-meet
does: ``result`` at once, then ``session-accept`` with its own transport (``setup="active"``:
the bridge is ICE-controlling and the DTLS server) and its sources (``<nick>-a0``,
``<nick>-v0``, one layer each), on an ORTC transport (:class:`~simulator.media.ortc.IceDtlsTransport`)
rather than a peer connection: Jingle is not SDP. The pre-encoded microphone and camera go
out through a :class:`~simulator.media.lean.LeanPublisher`; every source the focus announces
(the session's own, then ``source-add`` / ``source-remove``) is counted into the participant's
:class:`~simulator.media.analysers.MediaEvidence` by a :class:`~simulator.media.lean.LeanReceiver`,
so marks, tones and silence are evidence here as on the native lean path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final, Literal
from xml.etree import ElementTree as ET

import aiohttp
from aiortc import RTCDtlsFingerprint, RTCIceCandidate, RTCIceParameters

from simulator.jitsi.colibri import MappedSource
from simulator.jitsi.jingle import (
    NS_JINGLE,
    Candidate,
    Content,
    Fingerprint,
    Jingle,
    PayloadType,
    Source,
    SourceGroup,
    Transport,
)
from simulator.media.analysers import MediaEvidence, ReceivedStream
from simulator.media.description import fresh_ssrcs
from simulator.media.lean import LeanSource, ReceiveStats
from simulator.media.library import PROFILES
from simulator.media.ortc import IceDtlsTransport, RemoteTransport
from simulator.media.paths import Source as LocalSource
from simulator.sdk.jitsi.bridge import BridgeChannel
from simulator.sdk.jitsi.planes import FullPlane, LeanPlane, MediaPlane, Sent
from simulator.tasks import TaskSet

__all__ = ["JingleMedia"]

logger = logging.getLogger(__name__)

SIMULCAST: Final = ("l180", "l360", "l720")
"""The pre-encoded profiles of a simulcast camera's layers, lowest first (180, 360, 720 lines)."""
BRIDGE_OWNER: Final = "jvb"
"""The owner of the bridge's placeholder sources, which carry no one's media."""

SendIq = Callable[[str, str], Awaitable[ET.Element]]
"""``(to, payload XML)`` → the answer of an IQ ``set`` (raises if refused)."""


class JingleMedia:
    """The Jingle session of one participant: ``on_jingle`` takes the focus's IQs. ``path``
    says how its media moves (:mod:`simulator.sdk.jitsi.planes`); ``mic`` and ``camera`` are
    that path's sources (:func:`~simulator.media.paths.make_sources`)."""

    def __init__(
        self,
        nick: str,
        focus: str,
        *,
        mic: LocalSource,
        camera: LocalSource,
        evidence: MediaEvidence,
        uid_of: Callable[[str], str],
        send_iq: SendIq,
        answer: Callable[[ET.Element], Awaitable[None]],
        channel: Callable[[str], BridgeChannel] | None = None,
        simulcast: bool = False,
        path: Literal["lean", "full"] = "lean",
    ) -> None:
        self.nick = nick
        self._focus = focus
        self.mic, self.camera = mic, camera
        self.layers: list[LocalSource] = [camera]
        """The camera's layers, lowest first: itself alone, or three with ``simulcast`` (the
        same marks at 180, 360 and 720 lines, in a ``SIM`` group, as lib-jitsi-meet sends)."""
        if simulcast:
            if not isinstance(camera, LeanSource):
                raise ValueError("simulcast layers are pre-encoded: the lean path's")
            self.layers = [
                LeanSource(
                    "video", publisher_tag=camera.publisher_tag, profile=profile, enabled=camera.enabled
                )
                for profile in SIMULCAST
            ]
        self._camera_on = camera.enabled
        self._sender_limit: int | None = None
        self._evidence = evidence
        self._uid_of = uid_of
        self._send_iq = send_iq
        self._answer = answer
        self._make_channel = channel
        self.channel: BridgeChannel | None = None
        """The bridge channel, once the media connected (None if the offer named none, or it
        could not be opened: media flows without it)."""
        self._transport = IceDtlsTransport(controlling=False)  # the bridge offers, and controls
        self._plane: MediaPlane = LeanPlane(evidence) if path == "lean" else FullPlane(evidence, nick)
        self._codecs: dict[str, PayloadType] = {}
        """The codec of each kind, from the offer (what every remote source of it carries)."""
        self._streams: dict[int, ReceivedStream] = {}
        """What each announced SSRC carries."""
        self._sid: str | None = None
        self._tasks = TaskSet(f"jingle:{nick}")
        self.failure: str | None = None
        """Why the media session did not connect (None while it has not failed)."""
        self.done = asyncio.Event()
        """Set once the media connected, or failed (then :attr:`failure` says why)."""
        self.times: dict[str, float] = {}
        """Loop times of the steps: ``offered`` (session-initiate in), ``accepted`` (our
        session-accept sent), ``ice`` (ICE completed), ``connected`` (DTLS too)."""
        self._closed = False

    def on_jingle(self, iq: ET.Element) -> None:
        """A Jingle IQ from the focus: answered ``result`` at once (lib-jitsi-meet queues every
        later source change until it has), then acted on."""
        found = iq.find(f"{{{NS_JINGLE}}}jingle")
        if found is None or self._closed:
            return
        self._tasks.spawn(self._handle(iq, found), "jingle")

    async def _handle(self, iq: ET.Element, found: ET.Element) -> None:
        await self._answer(iq)
        jingle = Jingle.parse(found)
        match jingle.action:
            case "session-initiate" if self._sid is None:
                self.times["offered"] = asyncio.get_running_loop().time()
                self._sid = jingle.sid
                self._codecs = {c.name: c.payload_types[0] for c in jingle.contents if c.payload_types}
                self._announced(jingle.contents, added=True)
                try:
                    await self._accept(jingle)
                finally:
                    self.done.set()
            case "source-add" if jingle.sid == self._sid:
                self._announced(jingle.contents, added=True)
            case "source-remove" if jingle.sid == self._sid:
                self._announced(jingle.contents, added=False)
            case _:
                logger.info("%s: Jingle %s ignored", self.nick, jingle.action)

    async def _accept(self, offer: Jingle) -> None:
        bridge = offer.transport
        if bridge is None:
            self.failure = "the session-initiate has no transport"
            return
        local = await self._transport.gather()
        audio_ssrc, *video_ssrcs = fresh_ssrcs(1 + len(self.layers), set(self._streams))
        ours = Transport(
            local.ufrag,
            local.pwd,
            [Fingerprint(f.algorithm, f.value, "active") for f in local.fingerprints],
            [
                Candidate(c.foundation, c.component, c.protocol, c.priority, c.ip, c.port, c.type)
                for c in local.candidates
            ],
        )
        bound: list[Sent] = []
        accept = Jingle("session-accept", offer.sid, responder=self.nick, bundle=offer.bundle)
        for content in offer.contents:
            if content.name not in ("audio", "video") or not content.payload_types:
                continue
            payload_type = content.payload_types[0]
            if content.name == "audio":
                name = f"{self.nick}-a0"
                sent = [(self.mic, audio_ssrc, Source(audio_ssrc, name=name, msid=f"{name} {name}"))]
            elif self._camera_on:
                name = f"{self.nick}-v0"
                sent = [
                    (layer, ssrc, Source(ssrc, name=name, video_type="camera", msid=f"{name} {name}"))
                    for layer, ssrc in zip(self.layers, video_ssrcs, strict=True)
                ]
            else:
                sent = []  # an audio-only call announces no camera
            groups = [SourceGroup("SIM", [ssrc for _, ssrc, _ in sent])] if len(sent) > 1 else []
            accept.contents.append(
                Content(
                    content.name,
                    "both",
                    content.payload_types,
                    sources=[announced for _, _, announced in sent],
                    groups=groups,
                    transport=ours,
                )
            )
            bound.extend((source, ssrc, payload_type) for source, ssrc, _ in sent)
        await self._send_iq(self._focus, ET.tostring(accept.to_xml(), encoding="unicode"))
        self.times["accepted"] = asyncio.get_running_loop().time()
        remote = RemoteTransport(
            RTCIceParameters(usernameFragment=bridge.ufrag, password=bridge.pwd),
            _udp_candidates(offer),
            complete=True,
            fingerprints=[RTCDtlsFingerprint(f.hash, f.value) for f in bridge.fingerprints],
        )
        if not await self._transport.connect(remote):
            self.failure = self._transport.failure or "closed"
            return
        if self._transport.ice_completed_at is not None:
            self.times["ice"] = self._transport.ice_completed_at
        self.times["connected"] = asyncio.get_running_loop().time()
        await self._plane.start(self._transport.dtls, bound)
        if bridge.websocket and self._make_channel is not None:
            channel = self._make_channel(bridge.websocket)
            try:
                await channel.open()
            except (aiohttp.ClientError, OSError, ConnectionError) as exc:
                logger.warning("%s: no bridge channel at %s: %s", self.nick, channel.url, exc)
                await channel.close()
            else:
                self.channel = channel

    def _announced(self, contents: list[Content], *, added: bool) -> None:
        """The sources of others the bridge sends (or stops sending) this participant."""
        for content in contents:
            for source in content.sources:
                owner = source.owner.rpartition("/")[2]
                if owner == BRIDGE_OWNER or not owner:
                    continue
                if not added:
                    if (gone := self._streams.pop(source.ssrc, None)) is not None:
                        gone.active = False
                        self._plane.unbind(source.ssrc)
                    continue
                which: Literal["mic", "camera", "screen"] = "mic"
                if content.name == "video":
                    which = "screen" if source.video_type == "desktop" else "camera"
                stream = ReceivedStream(owner, self._uid_of(owner), which, content.name)
                self._receive(source.ssrc, stream)

    def set_camera(self, on: bool) -> None:
        """Send the camera (every layer the bridge lets through) or nothing of it."""
        self._camera_on = on
        self._apply_layers()

    def on_sender_limit(self, height: int | None) -> None:
        """The bridge's ``SenderSourceConstraints``: layers taller than anyone takes are not
        sent (the lowest always is, so a newcomer starts at once), as lib-jitsi-meet does."""
        self._sender_limit = height
        self._apply_layers()

    def _apply_layers(self) -> None:
        for index, layer in enumerate(self.layers):
            height = PROFILES[layer.profile].height if isinstance(layer, LeanSource) else 0
            fits = index == 0 or self._sender_limit is None or height <= self._sender_limit
            layer.set_enabled(self._camera_on and fits)

    def on_sources_map(self, kind: Literal["audio", "video"], sources: list[MappedSource]) -> None:
        """A rewriting bridge's source map: each SSRC now carries the named owner's source (a
        re-mapped SSRC's earlier stream ends; lib-jitsi-meet moves the track the same way)."""
        for mapped in sources:
            known = self._streams.get(mapped.ssrc)
            if known is not None and known.participant_id == mapped.owner and known.active:
                continue
            if known is not None:
                known.active = False
            which: Literal["mic", "camera", "screen"] = "mic"
            if kind == "video":
                which = "screen" if mapped.video_type == "desktop" else "camera"
            self._receive(mapped.ssrc, ReceivedStream(mapped.owner, self._uid_of(mapped.owner), which, kind))

    def _receive(self, ssrc: int, stream: ReceivedStream) -> None:
        """From now on ``ssrc`` carries ``stream``."""
        codec = self._codecs.get(stream.kind)
        if codec is None:
            logger.info("%s: a %s source before any offer of that kind, ignored", self.nick, stream.kind)
            return
        self._streams[ssrc] = stream
        self._evidence.add(stream)
        self._plane.bind(ssrc, stream, codec)

    async def receive_stats(self) -> ReceiveStats:
        """What arrived (lean: from the RTP headers; full: aiortc's receivers' statistics)."""
        return await self._plane.stats()

    async def close(self) -> None:
        """Stop sending and receiving; close the transport (idempotent)."""
        self._closed = True
        await self._tasks.aclose()
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        await self._plane.close()
        await self._transport.close()


def _udp_candidates(jingle: Jingle) -> list[RTCIceCandidate]:
    """The UDP candidates of a Jingle's (bundled) transport, as aiortc's."""
    transport = jingle.transport
    return [
        RTCIceCandidate(c.component, c.foundation, c.ip, c.port, c.priority, c.protocol, c.type)
        for c in (transport.candidates if transport is not None else [])
        if c.protocol == "udp"
    ]
