"""A client that stops reading is dropped, and costs the backend a bounded amount of memory."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct

import aiohttp
import pytest

from simulator.server import Backend
from simulator.server.outbox import OUTBOX_LIMIT, Outbox

pytestmark = pytest.mark.e2e


def test_an_outbox_holds_at_most_its_limit_then_marks_itself_overflowed() -> None:
    outbox: Outbox[int] = Outbox(limit=3)
    for n in range(10):
        outbox.send(n)
    assert len(outbox) == 3 and outbox.overflowed.is_set()
    outbox.close()
    outbox.close()
    assert len(outbox) == 4  # the three messages and one end marker


def _frame(text: str) -> bytes:
    """One masked client text frame (RFC 6455 §5.2)."""
    payload, mask = text.encode(), os.urandom(4)
    length = len(payload)
    header = b"\x81" + (
        bytes([0x80 | length]) if length < 126 else bytes([0x80 | 126]) + struct.pack("!H", length)
    )
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _silent_member(backend: Backend, token: str) -> socket.socket:
    """Join ``s1`` over a raw socket with a tiny receive buffer, then never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", backend.port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{backend.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(sock, 1024)
    assert response.startswith(b"HTTP/1.1 101")
    await loop.sock_sendall(sock, _frame(json.dumps({"type": "join", "token": token, "sessionId": "s1"})))
    return sock


async def test_a_client_that_stops_reading_is_dropped_and_the_room_carries_on(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    def token(uid: str) -> str:
        user = backend.store.user_for_auth_token(backend.provision_user(uid, uid.title()))
        assert user is not None
        return backend.tokens.issue(user, "s1")

    silent = await _silent_member(backend, token("silent"))
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(backend.ws_url) as talker:
            await talker.send_str(json.dumps({"type": "join", "token": token("talker"), "sessionId": "s1"}))
            async with asyncio.timeout(60):
                while backend.rooms.participant_count("s1") < 2:
                    assert (await talker.receive()).type is aiohttp.WSMsgType.TEXT
                # Each state change is a message for the silent member: far more than its socket
                # buffers and its outbox hold. Bounded: the loop stops once it has been dropped.
                for n in range(200_000):
                    await talker.send_str(json.dumps({"type": "state", "audioMuted": n % 2 == 0}))
                    if n % 500 == 0:
                        await asyncio.sleep(0)  # let the backend work through what arrived
                        if backend.rooms.participant_count("s1") == 1:
                            break
                while backend.rooms.participant_count("s1") != 1:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)  # the drop is the backend's own decision, with no event
            room = backend.rooms.get("s1")
            assert room is not None and [p.record.uid for p in room] == ["talker"]
            # Dropped for falling behind (not by the 30 s heartbeat, which would also end it).
            assert [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()] == [
                f"GET /ws from 127.0.0.1: dropped, {OUTBOX_LIMIT} messages behind"
            ]
            assert n > OUTBOX_LIMIT  # it took more than the outbox's worth of messages
            await talker.send_str(json.dumps({"type": "state", "audioMuted": True}))
            assert not talker.closed  # the room carries on for the one who reads
    finally:
        silent.close()
