"""The daemon side: checks off the event loop, bounded by the deadline, a result always."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.auth.service import Authenticator
from gateway.auth.verify import MessageFacts
from gateway.config import AuthSettings, Settings, SmtpSettings
from tests.auth.helpers import message, sign
from tests.dnsserver import SilentServer


def settings(address: str, **kw: object) -> Settings:
    host, _, port = address.rpartition(":")
    auth = AuthSettings(resolvers=((host, int(port)),), **kw)
    return Settings(source=Path("gateway.yaml"), authentication=auth,
                    smtp=SmtpSettings(hostname="gw.test"))


async def test_results_and_header(auth_world) -> None:
    auth = Authenticator(settings(auth_world.address, timeout=1.0))
    try:
        raw = sign(message(), auth_world.keys["signed.example"])
        results = await auth.check(MessageFacts("127.0.0.1", "mx.spf-pass.example",
                                                "x@spf-pass.example", raw))
        assert results.verifies("signed.example")
        assert results.sender_verified and not results.temporary_failure
        assert auth.annotate(raw, results).startswith(b"Authentication-Results: gw.test;")
    finally:
        auth.close()


async def test_silent_dns_ends_at_the_deadline_and_the_loop_keeps_running() -> None:
    silent = SilentServer()
    auth = Authenticator(settings(silent.address, timeout=1.0, deadline=0.3))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.get_running_loop().create_task(tick())
    try:
        results = await auth.check(MessageFacts("127.0.0.1", "h.example", "a@spf-pass.example",
                                                message()))
    finally:
        ticker.cancel()
        auth.close()
        silent.close()
    assert results.temporary_failure
    assert not results.verifies("signed.example")
    assert any(c.result == "temperror" for c in results.checks)
    assert ticks > 0  # the loop served other work while the lookups waited


async def test_hostile_message_gives_a_result(auth_world) -> None:
    auth = Authenticator(settings(auth_world.address, timeout=1.0))
    try:
        for raw in (b"", b"\r\n\r\n", b"DKIM-Signature: \xff\xfe\r\n\r\n",
                    b"From: <>\r\nFrom: a@b\r\nARC-Seal: i=1; garbage\r\n\r\nx",
                    b"X" * 300_000):
            results = await auth.check(MessageFacts("127.0.0.1", "", "", raw))
            assert results.checks
    finally:
        auth.close()
