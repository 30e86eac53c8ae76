"""XFORWARD over a real SMTP session, as Postfix sends it (smtp_send_xforward_command): only
from `smtp.xforward_hosts`, only outside a transaction, and then the forwarded client is the
one trust, sender authentication and the log line see."""

from __future__ import annotations

import aiosmtplib
import pytest
import structlog.testing

from tests.factories import TEACHER, make_message, write_settings
from tests.harness import wait_for

MESSAGE = make_message("Hello", "Hi there", sender="someone@outside.example", to=TEACHER)


async def _session(gw, *commands: str) -> list[tuple[int, str]]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=gw.port, start_tls=False)
    await client.connect()
    try:
        await client.ehlo(hostname="postfix.example")
        replies = []
        for command in commands:
            reply = await client.execute_command(*command.encode().split(b" ", 1))
            replies.append((reply.code, reply.message))
        return replies
    finally:
        await client.quit()


async def _send(gw, xforward: str | None) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=gw.port, start_tls=False)
    await client.connect()
    try:
        await client.ehlo(hostname="postfix.example")
        if xforward is not None:
            reply = await client.execute_command(b"XFORWARD", xforward.encode())
            assert reply.code == 250, reply
        await client.sendmail("someone@outside.example", [TEACHER], MESSAGE)
    finally:
        await client.quit()


@pytest.fixture
async def behind_postfix(tmp_path, upstream, gateways):
    """Postfix on 127.0.0.1 (trusted, may relay) hands mail over with XFORWARD."""
    return await gateways(write_settings(tmp_path, upstream.port,
                                         smtp="xforward_hosts: [127.0.0.1/32]"))


async def test_forwarded_outside_client_is_authenticated(behind_postfix, upstream):
    with structlog.testing.capture_logs() as logs:
        await _send(behind_postfix, "ADDR=203.0.113.5 NAME=mx.outside.example "
                                    "HELO=mx.outside.example IDENT=4Xq1Lr2Zkz PROTO=ESMTP")
        await wait_for(lambda: any(e["event"] == "message" for e in logs))
    [received] = upstream.messages
    assert received.content.count(b"Authentication-Results: gw.test;") == 1
    [line] = [e for e in logs if e["event"] == "message"]
    assert (line["client"], line["origin_queue_id"]) == ("203.0.113.5", "4Xq1Lr2Zkz")
    assert b"mx.outside.example" in received.content.split(b"\r\n\r\n")[0]  # Received: helo


async def test_forwarded_trusted_client_and_plain_connection_are_not_checked(behind_postfix,
                                                                            upstream):
    await _send(behind_postfix, "ADDR=127.0.0.9 HELO=[UNAVAILABLE]")
    await _send(behind_postfix, None)
    assert [b"Authentication-Results" in m.content for m in upstream.messages] == [False, False]


async def test_attributes_last_one_transaction(behind_postfix, upstream):
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=behind_postfix.port, start_tls=False)
    await client.connect()
    try:
        await client.ehlo(hostname="postfix.example")
        await client.execute_command(b"XFORWARD", b"ADDR=203.0.113.5")
        await client.sendmail("someone@outside.example", [TEACHER], MESSAGE)
        await client.sendmail("someone@outside.example", [TEACHER], MESSAGE)
    finally:
        await client.quit()
    assert [b"Authentication-Results" in m.content for m in upstream.messages] == [True, False]


async def test_ehlo_offers_it_to_configured_hosts_only(behind_postfix, tmp_path, upstream,
                                                       gateways):
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=behind_postfix.port, start_tls=False)
    await client.connect()
    await client.ehlo(hostname="postfix.example")
    assert client.supports_extension("xforward")
    await client.quit()
    (tmp_path / "other").mkdir()
    other = await gateways(write_settings(tmp_path / "other", upstream.port))
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=other.port, start_tls=False)
    await client.connect()
    await client.ehlo(hostname="anyone.example")
    assert not client.supports_extension("xforward")
    reply = await client.execute_command(b"XFORWARD", b"ADDR=10.0.0.1")
    assert reply.code == 550
    await client.quit()


async def test_refusals(behind_postfix):
    replies = await _session(behind_postfix, "XFORWARD", "XFORWARD COLOUR=blue",
                             "XFORWARD ADDR", "MAIL FROM:<a@outside.example>",
                             "XFORWARD ADDR=203.0.113.5")
    assert [code for code, _ in replies] == [501, 501, 501, 250, 503]
