"""Peer connections as callsim opens and closes them (the SFU and the client alike).

Closing carries a correction to aiortc 1.16: ``RTCPeerConnection.close()`` stops the
senders and receivers first and the transports after, yielding in between, while
aiortc's own unowned connect task may still be running. When that task sees the
DTLS transport still connected it starts a sender that ``close()`` has already
passed, whose tasks then run forever. Once ``close()`` has stopped the transports
nothing can start any more, so a second stop of every sender and receiver (both
idempotent) catches what started in the gap. (Found by this project's leak fixture.)
"""

from __future__ import annotations

from aiortc import RTCPeerConnection

from simulator.media.ice import rtc_configuration

__all__ = ["close_peer_connection", "open_peer_connection"]


def open_peer_connection() -> RTCPeerConnection:
    """A peer connection for loopback, no ICE servers, max-bundle."""
    return RTCPeerConnection(rtc_configuration())


async def close_peer_connection(pc: RTCPeerConnection) -> None:
    """Close ``pc`` and everything that started while it was closing."""
    await pc.close()
    for transceiver in pc.getTransceivers():
        await transceiver.sender.stop()
        await transceiver.receiver.stop()
