"""The block DATA reader without a socket: its long-line check against the definition, a
few reads however the lines look, and no message from a client gone mid-DATA.

(Over real sockets against stock aiosmtpd: tests/integration/test_smtp_dataread.py.)"""

from __future__ import annotations

import asyncio
import random

import pytest

from gateway.smtp.dataread import _has_long_line, read_data
from gateway.smtp.inflight import NO_ROOM, InFlight


def test_long_line_check_matches_splitting_into_lines() -> None:
    """The jumping check against the definition: any CRLF-separated piece, plus its CRLF,
    longer than the limit. Short random data for the edges, long lines around 1000."""
    def by_splitting(data: bytes, limit: int) -> bool:
        return bool(data) and max(map(len, data.split(b"\r\n"))) + 2 > limit

    rng = random.Random(5321)
    for _ in range(50_000):
        data = bytes(rng.choice(b"\r\na") for _ in range(rng.randrange(0, 30)))
        limit = rng.randrange(0, 12)
        assert _has_long_line(data, limit) == by_splitting(data, limit), (data, limit)
    for _ in range(500):
        data = b"".join(bytes(rng.choice(b"\r\nab") for _ in range(rng.randrange(0, 1200)))
                        + b"\r\n" for _ in range(rng.randrange(0, 12)))
        limit = rng.choice([500, 998, 999, 1000, 1001, 1002])
        assert _has_long_line(data, limit) == by_splitting(data, limit)


class CountingReader(asyncio.StreamReader):
    """A StreamReader that counts the reads asked of it."""

    reads = 0

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        self.reads += 1
        return await super().readuntil(separator)

    async def readexactly(self, n: int) -> bytes:
        self.reads += 1
        return await super().readexactly(n)

    async def read(self, n: int = -1) -> bytes:
        self.reads += 1
        return await super().read(n)


@pytest.mark.parametrize("unit", [b"One sentence.\r\n", b"a\r\n", b"a\n.\r\n", b"\r\n.a",
                                  b"\r", b"\r\n\r", b"..\r\n"])
async def test_reads_do_not_grow_with_the_lines(unit: bytes) -> None:
    """Lines ending in a full stop, one-letter lines, bare-LF look-alikes of the end line:
    whatever the lines, a message that has arrived is read in a few calls, not one per line
    (a 25 MB message of `a<LF>.<CRLF>` took 11 s of the event loop at one read per line)."""
    payload = unit * 20_000 + b"\r\n.\r\nQUIT\r\n"
    reader = CountingReader(limit=1001)
    reader.feed_data(payload)
    content, error = await read_data(reader, 10 << 20, 1 << 20)
    assert error is None and content is not None
    assert reader.reads <= 3
    assert await reader.readline() == b"QUIT\r\n"  # nothing past the end was taken


async def test_a_client_gone_mid_data_gives_no_message_wherever_it_stops() -> None:
    """Cut anywhere before the terminator is whole, including inside it (where the reader
    waits for the few bytes that would complete it): no content, no reply, nothing relayed."""
    payload = b"Subject: x\r\n\r\n.stuffed\r\nbody.\r\n\r\n.\r\n"
    for cut in range(len(payload)):
        reader = asyncio.StreamReader(limit=1001)
        reader.feed_data(payload[:cut])
        reader.feed_eof()
        assert await read_data(reader, 10_000, 1001) == (None, None), payload[:cut]
    reader = asyncio.StreamReader(limit=1001)
    reader.feed_data(payload)
    assert await read_data(reader, 10_000, 1001) == (b"Subject: x\r\n\r\nstuffed\r\nbody.\r\n\r\n",
                                                     None)


async def test_a_message_past_the_in_flight_ceiling_is_drained_and_refused() -> None:
    pool = InFlight(ceiling=10_000)
    held = pool.reserve()
    assert held.grow(6_000)  # another session's message, still being received
    reservation = pool.reserve()
    reader = asyncio.StreamReader(limit=1001)
    reader.feed_data(b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n" * 5 + b"y\r\n" * 2000 +
                     b".\r\nQUIT\r\n")
    assert await read_data(reader, 1 << 20, 1001, reservation) == (None, NO_ROOM)
    assert reservation.size == 0 and pool.used == 6_000  # nothing of it is held
    assert await reader.readline() == b"QUIT\r\n"  # read to its end: the session goes on
    held.release()
    reader = asyncio.StreamReader(limit=1001)
    reader.feed_data(b"Subject: fits\r\n\r\nbody\r\n.\r\n")
    content, error = await read_data(reader, 1 << 20, 1001, reservation)
    assert (content, error) == (b"Subject: fits\r\n\r\nbody\r\n", None)
    assert 0 < reservation.size == pool.used  # held until the caller has replied
    reservation.release()
    assert pool.used == 0


def test_the_pool_counts_what_is_held_and_refuses_past_its_ceiling() -> None:
    pool = InFlight(ceiling=100)
    a, b = pool.reserve(), pool.reserve()
    assert a.grow(60) and not b.grow(41) and b.grow(40)
    assert pool.used == 100 and b.size == 40
    a.release()
    a.release()  # twice is harmless
    assert pool.used == 40 and b.grow(60)
