"""An upstream that cannot take a message now: the client gets a 4xx it will retry, and the
log says at warning which upstream failed and exactly how (the socket error, the timeout, the
TLS refusal, the upstream's own reply), never a code nobody sent."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import aiosmtplib
import pytest
from structlog.testing import capture_logs

from tests.factories import make_message, write_settings
from tests.harness import send

SENDER = "teacher@staff.example.org"
RECIPIENT = "someone@example.com"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def silent_upstream() -> AsyncIterator[int]:
    """Accepts connections and never greets."""
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.fixture
def attempt(tmp_path, gateways):
    """Send one message through a gateway whose upstream is `port`; the 4xx reply and the
    `upstream_deferred` log entry."""
    async def run(port: int, *, upstream_timeout: float = 5,
                  starttls: str = "off") -> tuple[int, str, dict]:
        settings = write_settings(tmp_path, port, upstream_timeout=upstream_timeout)
        settings = replace(settings, upstream=replace(settings.upstream, starttls=starttls))
        gw = await gateways(settings)
        with capture_logs() as logs, pytest.raises(aiosmtplib.SMTPDataError) as info:
            await send(gw.port, SENDER, [RECIPIENT], make_message())
        [entry] = [e for e in logs if e["event"] == "upstream_deferred"]
        return info.value.code, info.value.message, entry
    return run


async def test_nothing_listening_names_the_upstream_and_the_refused_connection(attempt):
    port = closed_port()
    code, message, entry = await attempt(port)
    assert (code, message) == (451, "4.4.1 upstream unreachable, try again later")
    assert entry["log_level"] == "warning"
    assert (entry["host"], entry["port"], entry["failure"]) == ("127.0.0.1", port, "connect")
    assert "ConnectionRefusedError" in entry["cause"], entry["cause"]


async def test_an_upstream_that_never_greets_is_a_timeout(attempt, silent_upstream):
    code, message, entry = await attempt(silent_upstream, upstream_timeout=0.3)
    assert (code, message) == (451, "4.4.1 upstream connection timed out, try again later")
    assert entry["failure"] == "timeout" and entry["port"] == silent_upstream
    assert "timed out" in entry["cause"].lower(), entry["cause"]


async def test_tls_required_but_not_offered_says_so(attempt, upstream):
    code, message, entry = await attempt(upstream.port, starttls="require")
    assert code == 451 and message.startswith("4.4.1 ")
    assert entry["failure"] == "connect"
    assert "STARTTLS" in entry["cause"], entry["cause"]
    assert not upstream.messages


async def test_the_upstreams_own_4xx_is_logged_and_its_code_passed_on(attempt, upstream):
    upstream.behaviour.data_reply = "452 4.3.1 Insufficient system storage"
    code, message, entry = await attempt(upstream.port)
    assert (code, message) == (451, "4.4.0 Upstream deferred the message (452), "
                                    "try again later")
    assert entry["failure"] == "tempfail"
    assert entry["cause"] == "upstream replied 452 4.3.1 Insufficient system storage"
