"""Sends written out at the end of the loop's turn (simulator.media.rtp.Outbox), and the
one-per-loop getter it is found with (simulator.eventloop.per_loop)."""

from __future__ import annotations

import asyncio
import weakref

import pytest

from simulator.eventloop import per_loop
from simulator.media.rtp import Outbox, RtpLink, handler_time, outbox


class Link:
    """What the outbox asks of an RtpLink: to write a datagram now."""

    def __init__(self, written: list[tuple[str, bytes]], name: str) -> None:
        self.written = written
        self.name = name

    def write(self, data: bytes) -> None:
        self.written.append((self.name, data))


def _links(written: list[tuple[str, bytes]]) -> tuple[RtpLink, RtpLink]:
    return Link(written, "a"), Link(written, "b")  # type: ignore[return-value]  # the write surface


async def _end_of_turn() -> None:
    """Resume after the callbacks already due in this turn of the loop have run."""
    turn_over = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(turn_over.set_result, None)
    await turn_over


async def test_a_turns_sends_go_out_together_at_its_end_in_order() -> None:
    written: list[tuple[str, bytes]] = []
    a, b = _links(written)
    box = Outbox()
    box.put(a, b"1")
    box.put(b, b"2")
    box.put(a, b"3")
    assert written == []
    await _end_of_turn()
    assert written == [("a", b"1"), ("b", b"2"), ("a", b"3")]
    # The next turn's sends go out at the end of that turn, once each.
    box.put(b, b"4")
    await _end_of_turn()
    await _end_of_turn()
    assert written[3:] == [("b", b"4")]


async def test_the_writes_count_as_handler_time_when_it_is_read() -> None:
    class Slow(Link):
        def write(self, data: bytes) -> None:
            super().write(data)
            sum(range(20_000))  # a send's work

    written: list[tuple[str, bytes]] = []
    box = Outbox()
    before = handler_time.seconds
    handler_time.on = True
    try:
        box.put(Slow(written, "slow"), b"x")  # type: ignore[arg-type]
        await _end_of_turn()
    finally:
        handler_time.on = False
    assert written == [("slow", b"x")]
    assert handler_time.seconds > before


async def test_one_outbox_per_running_loop() -> None:
    assert outbox() is outbox()
    assert isinstance(outbox(), Outbox)


def test_per_loop_makes_one_per_loop_and_forgets_closed_loops() -> None:
    class Made:
        pass

    get = per_loop(Made)

    async def twice() -> tuple[Made, Made]:
        return get(), get()

    first, again = asyncio.run(twice())
    assert first is again
    earlier = weakref.ref(first)
    del first, again
    second, again = asyncio.run(twice())
    assert second is again
    assert earlier() is None, "the closed loop's one is still held"
    with pytest.raises(RuntimeError):
        get()  # outside a running loop
