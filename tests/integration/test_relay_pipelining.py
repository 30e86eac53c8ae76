"""The relay pipelines MAIL, RCPT and DATA (RFC 2920) and decides exactly as without it.

Two kinds of upstream: the shared aiosmtpd one (which now announces PIPELINING, as real district
servers do), compared with pipelining on and off for every refusal the relay handles; and a
scripted server that controls how the replies arrive (all in one write, one by one, cut
mid-line, one too many, malformed) and that answers nothing until it holds the whole group,
so a relay that did not pipeline would time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop
from aiosmtpd.smtp import SMTP

from gateway.config import UpstreamSettings
from gateway.smtp.client import Relay, RelayResult
from gateway.smtp.pipelining import PipeliningProtocol, PipeliningSMTP
from gateway.smtp.wire import data_payload
from tests.harness import self_signed
from tests.upstream import (
    Script,
    ScriptedUpstream,
    Upstream,
    UpstreamBehaviour,
    UpstreamHandler,
    scripted,
)

SENDER = "teacher@staff.example.org"
ONE, TWO = "parent1@example.com", "parent2@example.com"
MESSAGE = b"Subject: t\r\n\r\nhello\r\n.dot line\r\n"


def relay_for(port: int, *, pipelining: bool = True, timeout: float = 5) -> Relay:
    return Relay(UpstreamSettings(host="127.0.0.1", port=port, timeout=timeout,
                                  starttls="off", pipelining=pipelining), "gw.test")


# -- against aiosmtpd, pipelining on and off ---------------------------------------------
BEHAVIOURS: dict[str, dict[str, Any]] = {
    "accepted": {},
    "one recipient refused": {"refuse_rcpt": {TWO}},
    "every recipient refused": {"refuse_rcpt": {ONE, TWO}},
    "one recipient tempfailed": {"tempfail_rcpt": {TWO}},
    "sender refused": {"mail_reply": "550 5.7.1 sender refused"},
    "sender tempfailed": {"mail_reply": "451 4.3.0 try later"},
    "message refused": {"data_reply": "554 5.7.1 no"},
    "message tempfailed": {"data_reply": "451 4.3.0 later"},
    "one refused, then one tempfailed": {"refuse_rcpt": {ONE}, "tempfail_rcpt": {TWO}},
    "one tempfailed, then one refused": {"tempfail_rcpt": {ONE}, "refuse_rcpt": {TWO}},
    "one refused, message refused": {"refuse_rcpt": {TWO}, "data_reply": "554 5.7.1 no"},
    "sender answered 421": {"mail_reply": "421 4.3.2 shutting down"},
}


async def outcome(upstream: Upstream, behaviour: dict[str, Any],
                  pipelining: bool) -> tuple[RelayResult, list[Any], RelayResult]:
    upstream.behaviour.pipelining = pipelining
    for name, value in behaviour.items():
        setattr(upstream.behaviour, name, value)
    upstream.handler.messages.clear()
    relay = relay_for(upstream.port)
    try:
        result = await relay.send(SENDER, [ONE, TWO], MESSAGE)
        delivered = [(m.mail_from, m.rcpt_tos, m.content) for m in upstream.messages]
        for name in behaviour:  # back to normal: whatever connection is pooled must work
            setattr(upstream.behaviour, name, getattr(UpstreamBehaviour(), name))
        after = await relay.send(SENDER, [ONE], MESSAGE)
    finally:
        await relay.close()
    return result, delivered, after


@pytest.mark.parametrize("case", BEHAVIOURS)
async def test_pipelined_relay_decides_as_one_command_at_a_time(
        upstream: Upstream, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    groups: list[int] = []
    real = PipeliningProtocol.send_pipelined

    async def counted(self: PipeliningProtocol, commands: Any, timeout: Any) -> Any:
        groups.append(len(commands))
        return await real(self, commands, timeout)

    monkeypatch.setattr(PipeliningProtocol, "send_pipelined", counted)
    behaviour = BEHAVIOURS[case]
    plain = await outcome(upstream, behaviour, pipelining=False)
    assert groups == []
    piped = await outcome(upstream, behaviour, pipelining=True)
    assert groups and groups[0] == 4  # MAIL, two RCPTs and DATA: the run really pipelined
    assert piped == plain
    assert piped[2].delivered  # the connection left behind (pooled or not) still works


async def test_a_tempfailed_recipient_after_354_sends_nothing(upstream: Upstream) -> None:
    """aiosmtpd answers the pipelined DATA with 354 (one recipient was accepted): the relay
    must not send the message, nor a lone dot (an empty message to the accepted one)."""
    upstream.behaviour.tempfail_rcpt = {TWO}
    relay = relay_for(upstream.port, timeout=60)
    try:
        # Liveness, not speed: a relay that sent RSET into the DATA phase would wait for a
        # reply that never comes (the upstream reads it as message text).
        result = await asyncio.wait_for(relay.send(SENDER, [ONE, TWO], MESSAGE), 20)
        assert result.temporary is not None and result.temporary[0] == 450
        assert not result.delivered
        await asyncio.sleep(0.1)
        assert upstream.messages == []
        assert relay._idle == []  # that connection was closed, not pooled mid-DATA
    finally:
        await relay.close()


# -- a scripted upstream (tests.upstream.ScriptedUpstream) -------------------------------
@contextlib.asynccontextmanager
async def scripted_relay(script: Script, **options: Any) -> AsyncIterator[
        tuple[ScriptedUpstream, Relay]]:
    """A scripted upstream and a relay to it, both closed at the end."""
    up = await scripted(script)
    relay = relay_for(up.port, **options)
    try:
        yield up, relay
    finally:
        await relay.close()
        await up.stop()


@pytest.mark.parametrize("cut", ["together", "one by one", "mid-line", "byte by byte"])
async def test_replies_are_read_however_they_arrive(cut: str) -> None:
    chunks: dict[str, Callable[[bytes], list[bytes]]] = {
        "together": lambda d: [d],
        "one by one": lambda d: [line + b"\r\n" for line in d.split(b"\r\n")[:-1]],
        "mid-line": lambda d: [d[:2], d[2:11], d[11:]],
        "byte by byte": lambda d: [d[i:i + 1] for i in range(len(d))],
    }
    async with scripted_relay(Script(chunks=chunks[cut])) as (up, relay):
        for _ in range(3):  # the pooled connection stays in step
            result = await relay.send(SENDER, [ONE], MESSAGE)
            assert result.delivered and result.reply == "250 queued"
        assert up.connections == 1
        assert up.reads[0].count(b"\r\n") == 3  # MAIL, RCPT and DATA came as one group
        assert up.messages == [data_payload(MESSAGE)] * 3


async def test_several_recipients_go_in_the_same_group() -> None:
    async with scripted_relay(Script(group_size=4)) as (up, relay):
        result = await relay.send(SENDER, [ONE, TWO], MESSAGE)
        assert result.accepted == (ONE, TWO)
        assert up.reads[0].count(b"\r\n") == 4


@pytest.mark.parametrize("extra", [b"250 stray\r\n", b"554 half a stray"])
async def test_a_reply_too_many_is_not_taken_for_the_next_one(extra: bytes) -> None:
    """A server that answers more than it was asked: what follows the group's replies is
    dropped, or it would be read as (or glued to) the message's final reply."""
    async with scripted_relay(Script(extra=extra)) as (_up, relay):
        result = await relay.send(SENDER, [ONE], MESSAGE)
        assert result.reply == "250 queued"
        assert (await relay.send(SENDER, [ONE], MESSAGE)).reply == "250 queued"


async def test_a_malformed_reply_is_a_tempfail_not_a_crash() -> None:
    malformed = Script(answer=lambda lines: [b"250 ok\r\n", b"oops\r\n", b"354 go\r\n"])
    async with scripted_relay(malformed) as (up, relay):
        result = await relay.send(SENDER, [ONE], MESSAGE)
        assert result.temporary is not None and result.temporary[0] == 451
        assert up.messages == []


async def test_dropped_during_a_group_on_a_reused_connection_is_retried_once() -> None:
    async with scripted_relay(Script(drop_on_transaction=2)) as (up, relay):
        assert (await relay.send(SENDER, [ONE], MESSAGE)).delivered
        result = await relay.send(SENDER, [ONE], MESSAGE)  # pooled connection dies mid-group
        assert result.delivered
        assert len(up.messages) == 2 and up.connections == 2


async def test_a_silent_upstream_times_out_as_a_tempfail() -> None:
    silent = Script(group_size=99)  # waits for lines that never come
    async with scripted_relay(silent, timeout=0.3) as (_up, relay):
        result = await relay.send(SENDER, [ONE], MESSAGE)
        assert result.temporary is not None and result.temporary[0] == 451
        assert relay._idle == []


async def test_pipelining_off_sends_one_command_at_a_time() -> None:
    mail_only = Script(group_size=1, answer=lambda lines: [b"250 ok\r\n"])
    async with scripted_relay(mail_only, pipelining=False) as (up, relay):
        result = await relay.send(SENDER, [ONE], MESSAGE)
        # The scripted server answers only MAIL; a pipelining relay would have sent RCPT and
        # DATA with it.
        assert up.reads[0] == f"MAIL FROM:<{SENDER}>\r\n".encode()
        assert not result.delivered  # the script answers RCPT with 500


def test_pipelining_works_on_uvloop() -> None:
    """The daemon runs on uvloop, which keeps the protocol's data_received from when the
    transport got it: the upgraded protocol must be handed to the transport again."""

    async def main() -> None:
        up = await scripted(Script(chunks=lambda d: [d[:5], d[5:]]))
        smtp = PipeliningSMTP(hostname="127.0.0.1", port=up.port, start_tls=False, timeout=2)
        try:
            await smtp.connect()
            await smtp.ehlo()
            assert smtp.can_pipeline and isinstance(smtp.protocol, PipeliningProtocol)
            replies = await smtp.protocol.send_pipelined(
                [b"MAIL FROM:<a@b.example>", b"RCPT TO:<c@d.example>", b"DATA"], 2)
            assert [r.code for r in replies] == [250, 250, 354]
        finally:
            smtp.close()
            await up.stop()

    uvloop.run(main())


async def test_a_command_with_a_control_character_is_refused_before_sending() -> None:
    up = await scripted(Script())
    smtp = PipeliningSMTP(hostname="127.0.0.1", port=up.port, start_tls=False, timeout=2)
    try:
        await smtp.connect()
        await smtp.ehlo()
        assert smtp.protocol is not None
        with pytest.raises(ValueError):
            await smtp.protocol.send_pipelined([b"MAIL FROM:<a@b>\r\nRSET", b"DATA"], 2)
        assert up.transactions == 0
        assert (await smtp.noop())[0] == 250  # still in step
    finally:
        smtp.close()
        await up.stop()


async def test_a_thousand_recipients_in_one_group() -> None:
    """Their replies arrive together, more bytes than aiosmtplib allows for one reply."""
    rcpts = [f"parent{i}@example.com" for i in range(1000)]
    wordy = Script(group_size=1002, answer=lambda lines: [
        b"354 go\r\n" if line == b"DATA" else b"250 2.1.5 " + line[8:] + b" ok\r\n"
        for line in lines])
    async with scripted_relay(wordy) as (_up, relay):
        result = await relay.send(SENDER, rcpts, MESSAGE)
        assert result.delivered and result.accepted == tuple(rcpts)


async def test_an_endless_reply_line_is_refused() -> None:
    async with scripted_relay(Script(answer=lambda lines: [b"250-" + b"x" * 40000])) as (up, relay):
        result = await relay.send(SENDER, [ONE], MESSAGE)
        assert result.temporary is not None
        assert up.messages == []
        assert relay._idle == []


def closing_at(position: int, code: bytes = b"421 4.3.2 shutting down") -> Script:
    """Answers the group with 250s up to `position`, there `code`, then closes."""
    return Script(close_after_replies=True,
                  answer=lambda lines: [b"250 ok\r\n"] * position + [code + b"\r\n"])


@pytest.mark.parametrize("position, code, expected", [
    (0, b"421 4.3.2 shutting down", (451, None, (421, "4.3.2 shutting down"))),
    (1, b"421 4.3.2 shutting down", (451, None, (421, "4.3.2 shutting down"))),
    (0, b"550 5.7.1 sender refused", (550, "MAIL refused", None)),
    (1, b"550 5.1.1 unknown", (550, "all recipients refused", None)),
])
async def test_replies_before_a_close_still_decide(position: int, code: bytes,
                                                   expected: tuple[Any, ...]) -> None:
    """A server may answer and close at once (421, RFC 5321 3.8): the replies that came
    decide as they would one command at a time, and the copy is not retried elsewhere."""
    async with scripted_relay(closing_at(position, code)) as (up, relay):
        result = await relay.send(SENDER, [ONE], MESSAGE)
        kind, reply, temporary = expected
        assert result.temporary == temporary
        if kind == 550:
            assert result.reply == reply and result.refused[ONE][0] == 550
        assert up.connections == 1 and relay._idle == []


async def test_one_command_at_a_time_gives_the_same_421() -> None:
    closing = Script(group_size=1, close_after_replies=True,
                     answer=lambda lines: [b"421 4.3.2 shutting down\r\n"])
    async with scripted_relay(closing, pipelining=False) as (_up, relay):
        result = await relay.send(SENDER, [ONE], MESSAGE)
        assert result.temporary == (421, "4.3.2 shutting down")


async def test_bytes_left_from_the_last_message_do_not_shift_the_next_group() -> None:
    async with scripted_relay(Script(after_queued=b"250 stray\r\n")) as (up, relay):
        for _ in range(3):
            result = await relay.send(SENDER, [ONE], MESSAGE)
            assert result.delivered and result.reply == "250 queued"
        assert up.connections == 1 and len(up.messages) == 3


async def test_dropped_during_a_group_on_a_fresh_connection_is_not_retried() -> None:
    async with scripted_relay(Script(drop_on_transaction=1)) as (up, relay):
        result = await relay.send(SENDER, [ONE], MESSAGE)
        assert result.temporary == (451, "4.4.2 upstream connection lost")
        assert up.connections == 1


async def test_dropped_after_the_message_was_sent_is_never_retried() -> None:
    """The upstream may have queued it: a retry elsewhere could deliver it twice."""
    async with scripted_relay(Script(drop_after_data_on=2)) as (up, relay):
        assert (await relay.send(SENDER, [ONE], MESSAGE)).delivered
        result = await relay.send(SENDER, [ONE], MESSAGE)  # on the pooled connection
        assert result.temporary == (451, "4.4.2 upstream connection lost")
        assert up.connections == 1 and len(up.messages) == 2


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_pipelining_after_starttls(tmp_path: Path, loop: str) -> None:
    """The district server usually offers STARTTLS: the relay upgrades, greets again and
    pipelines inside TLS (on uvloop too, where the TLS layer keeps its own reference to the
    protocol). The upstream requires TLS, so nothing can go in the clear."""
    cert, key = self_signed(tmp_path, "upstream.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def main() -> tuple[RelayResult, list[Any], list[int]]:
        handler = UpstreamHandler(UpstreamBehaviour())
        server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(handler, tls_context=context, require_starttls=True,
                         decode_data=False), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        groups: list[int] = []
        real = PipeliningProtocol.send_pipelined

        async def counted(self: PipeliningProtocol, commands: Any, timeout: Any) -> Any:
            groups.append(len(commands))
            return await real(self, commands, timeout)

        PipeliningProtocol.send_pipelined = counted  # type: ignore[method-assign]
        relay = Relay(UpstreamSettings(host="127.0.0.1", port=port, timeout=5,
                                       starttls="opportunistic"), "gw.test")
        try:
            results = [await relay.send(SENDER, [ONE, TWO], MESSAGE) for _ in range(2)]
        finally:
            PipeliningProtocol.send_pipelined = real  # type: ignore[method-assign]
            await relay.close()
            server.close()
        return results[-1], handler.messages, groups

    run = uvloop.run if loop == "uvloop" else asyncio.run
    result, messages, groups = run(main())
    assert result.delivered and result.accepted == (ONE, TWO)
    assert len(messages) == 2 and messages[0].rcpt_tos == [ONE, TWO]
    assert groups == [4, 4]
