"""The bridge channel's messages (colibri over WebSocket): JSON objects keyed by ``colibriClass``.

Both sides write and read them here: the bridge (:mod:`simulator.server.jitsi.colibri`: who is
connected, what is relayed) and the client (:mod:`simulator.sdk.jitsi.bridge`). The source
maps are lib-jitsi-meet's reading of a bridge that rewrites SSRCs: a few SSRCs, each one
announced (and announced again) as carrying some owner's source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Constraints",
    "MappedSource",
    "endpoint_message",
    "forwarded_sources",
    "read_constraints",
    "read_sender_limit",
    "read_sources_map",
    "receiver_constraints",
    "sender_source_constraints",
    "server_hello",
    "sources_map",
]

Message = dict[str, Any]


@dataclass(frozen=True)
class Constraints:
    """A client's ``ReceiverVideoConstraints``: a default height and some per source name
    (None: no limit)."""

    default: int | None = None
    sources: dict[str, int | None] = field(default_factory=dict)

    def height(self, source_name: str) -> int | None:
        return self.sources.get(source_name, self.default)


def read_constraints(message: dict[str, Any]) -> Constraints:
    """A ``ReceiverVideoConstraints`` message's heights: the default and those per source
    (``-1``, or anything not a number, means no limit)."""

    def height(constraint: object) -> int | None:
        value = constraint.get("maxHeight") if isinstance(constraint, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    per_source = message.get("constraints")
    return Constraints(
        height(message.get("defaultConstraints")),
        {str(name): height(c) for name, c in per_source.items()} if isinstance(per_source, dict) else {},
    )


def receiver_constraints(default: int | None, sources: dict[str, int | None] | None = None) -> Message:
    """A client's ``ReceiverVideoConstraints``: the tallest layer it wants by default and per
    source name (None: no limit, written ``-1`` as lib-jitsi-meet does)."""
    return {
        "colibriClass": "ReceiverVideoConstraints",
        "defaultConstraints": {"maxHeight": -1 if default is None else default},
        "constraints": {name: {"maxHeight": -1 if h is None else h} for name, h in (sources or {}).items()},
    }


def server_hello(version: str) -> Message:
    return {"colibriClass": "ServerHello", "version": version}


def sender_source_constraints(source_name: str, max_height: int | None) -> Message:
    """The tallest layer anyone takes of a client's source (None: no limit, written ``-1``)."""
    return {
        "colibriClass": "SenderSourceConstraints",
        "sourceName": source_name,
        "maxHeight": -1 if max_height is None else max_height,
    }


def read_sender_limit(message: Message) -> int | None:
    """A ``SenderSourceConstraints``'s height (None: no limit, or not a height)."""
    height = message.get("maxHeight")
    return height if isinstance(height, int) and not isinstance(height, bool) and height >= 0 else None


def forwarded_sources(names: list[str]) -> Message:
    """The video sources the bridge now forwards to this client, by name."""
    return {"colibriClass": "ForwardedSources", "forwardedSources": names}


def endpoint_message(payload: Any, to: str = "", sender: str | None = None) -> Message:
    """An ``EndpointMessage`` to ``to`` (empty: everyone); the bridge adds ``from`` as it relays."""
    message: Message = {"colibriClass": "EndpointMessage", "to": to, "msgPayload": payload}
    if sender is not None:
        message["from"] = sender
    return message


@dataclass(frozen=True, slots=True)
class MappedSource:
    """One entry of a source map: ``ssrc`` now carries ``owner``'s source ``source``."""

    ssrc: int
    owner: str
    source: str
    video_type: str = ""
    rtx: int | None = None


def sources_map(kind: Literal["audio", "video"], sources: list[MappedSource]) -> Message:
    """``AudioSourcesMap`` or ``VideoSourcesMap`` of ``sources``."""
    entries: list[Message] = []
    for s in sources:
        entry: Message = {"source": s.source, "owner": s.owner, "ssrc": s.ssrc}
        if kind == "video":
            entry["videoType"] = s.video_type or "camera"
            if s.rtx is not None:
                entry["rtx"] = s.rtx
        entries.append(entry)
    return {
        "colibriClass": "VideoSourcesMap" if kind == "video" else "AudioSourcesMap",
        "mappedSources": entries,
    }


def read_sources_map(message: Message) -> tuple[Literal["audio", "video"], list[MappedSource]]:
    """A source map's kind and entries (entries without an SSRC, an owner or a name are skipped)."""
    kind: Literal["audio", "video"] = "video" if message.get("colibriClass") == "VideoSourcesMap" else "audio"
    entries = message.get("mappedSources")
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        ssrc, owner, source = entry.get("ssrc"), entry.get("owner"), entry.get("source")
        if not isinstance(ssrc, int) or isinstance(ssrc, bool) or not (0 < ssrc < 2**32):
            continue
        if not isinstance(owner, str) or not owner or not isinstance(source, str) or not source:
            continue
        rtx = entry.get("rtx")
        out.append(
            MappedSource(
                ssrc,
                owner,
                source,
                str(entry.get("videoType") or ("camera" if kind == "video" else "")),
                rtx if isinstance(rtx, int) and not isinstance(rtx, bool) else None,
            )
        )
    return kind, out
