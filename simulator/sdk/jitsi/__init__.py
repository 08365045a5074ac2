"""The client's door for the Jitsi protocol: what a virtual participant needs to speak to a
Jitsi-style deployment as the published SDK does (XMPP over WebSocket, the focus, the MUC),
written on the shared wire (:mod:`simulator.jitsi`)."""

from simulator.sdk.jitsi.conference import JitsiParticipant
from simulator.sdk.jitsi.xmpp import JitsiClient, XmppRefusedError

__all__ = ["JitsiClient", "JitsiParticipant", "XmppRefusedError"]
