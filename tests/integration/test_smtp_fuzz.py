"""The SMTP session under generated command streams (Hypothesis), over a real socket.

Whatever a client sends (commands in any order, binary junk, overlong lines, bare line ends,
dots, pipelined bursts), every reply is a well-formed SMTP reply, no hook ever fails (`451
4.3.0` would mean an exception inside), and the server keeps serving: a normal message
afterwards is delivered. The gateway runs in a thread of its own so the generated client can
use plain blocking sockets.

Short by default; `HYPOTHESIS_PROFILE=long` runs many more (profiles in tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import STUDENT, TEACHER, make_message, write_settings
from tests.harness import start_gateway
from tests.upstream import Upstream

REPLY = re.compile(rb"^[2-5]\d\d[ -]")
COMMANDS = [b"EHLO fuzz", b"HELO fuzz", f"MAIL FROM:<{TEACHER}>".encode(),
            f"RCPT TO:<{STUDENT}>".encode(), b"RCPT TO:<x@outside.example>", b"DATA", b"RSET",
            b"NOOP", b"VRFY x", b"HELP", b"STARTTLS", b"MAIL FROM:<>", b"BDAT 10", b".",
            b"..", b"Subject: x", b"", b"MAIL FROM:<a@b> SIZE=99999999999", b"AUTH PLAIN"]
lines = st.one_of(
    st.sampled_from(COMMANDS),
    st.binary(max_size=80).map(lambda b: b.replace(b"\n", b"")),
    st.integers(900, 3000).map(lambda n: b"X" * n),
)
endings = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A gateway (scripted policy, relay to a real upstream) on its own loop and thread."""
    loop = asyncio.new_event_loop()
    box: dict[str, Any] = {}
    ready = threading.Event()
    folder: Path = tmp_path_factory.mktemp("fuzz")

    async def start() -> None:
        upstream = await Upstream().start()
        gateway = await start_gateway(write_settings(folder, upstream.port,
                                                     smtp="command_timeout: 5"))
        box.update(upstream=upstream, gateway=gateway, port=gateway.port)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield box

    async def stop() -> None:
        await box["gateway"].drain(0)
        await box["upstream"].stop()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def replies(port: int, stream: bytes) -> list[bytes]:
    """Send `stream` in one burst, then QUIT; every reply line until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(stream + b"\r\n.\r\nQUIT\r\n")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return [line for line in data.split(b"\r\n") if line]


@given(st.lists(st.tuples(lines, endings), max_size=25))
def test_any_command_stream_gets_well_formed_replies_and_no_hook_fails(served, stream) -> None:
    got = replies(served["port"], b"".join(line + end for line, end in stream))
    assert got and got[0].startswith(b"220")
    for line in got:
        assert REPLY.match(line), line
        assert not line.startswith(b"451 4.3.0 Temporary local problem"), line


def test_after_the_fuzzing_a_normal_message_is_delivered(served) -> None:
    before = len(served["upstream"].messages)
    with smtplib.SMTP("127.0.0.1", served["port"], timeout=10) as client:
        refused = client.sendmail(TEACHER, [STUDENT], make_message())
    assert refused == {}
    assert len(served["upstream"].messages) == before + 1
