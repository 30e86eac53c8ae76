"""The SMTP hop over real loopback sockets: delivery guarantees, limits, relay control."""

from __future__ import annotations

import asyncio
import contextlib
import email
import smtplib
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
import structlog.testing

from gateway import metrics
from gateway.model import Action, Inspection
from gateway.smtp.batching import BatchedRepliesSMTP
from gateway.smtp.server import GatewaySMTP
from gateway.yamlsrc import SourceErrors
from tests.factories import (
    ExplodingInspector,
    NullInspector,
    ScriptedPolicy,
    make_message,
    write_settings,
)
from tests.harness import DeadPort, self_signed, send, start_gateway, wait_for

SENDER = "teacher@staff.example.org"
STUDENT = "student@students.example.org"
OUTSIDER = "someone@outside.example.net"


def strip_trace(content: bytes) -> bytes:
    """Remove the gateway's Received: header (the only bytes it adds)."""
    assert content.startswith(b"Received: from ")
    end = content.index(b"\r\n", content.index(b"(district-gateway)"))
    end = content.index(b"\r\n", end + 2)  # the folded date line
    return content[end + 2:]


async def test_relays_client_bytes_plus_one_trace_header(tmp_path, upstream, gateways):
    settings = write_settings(tmp_path, upstream.port)
    gw = await gateways(settings)
    content = make_message(body="Caf\u00e9 au lait\n")
    errors, reply = await send(gw.port, SENDER, [STUDENT], content)
    assert errors == {} and reply.startswith("2.0.0 Ok: queued as ")
    [got] = upstream.messages
    assert got.mail_from == SENDER and got.rcpt_tos == [STUDENT]
    assert strip_trace(got.content) == content
    trace = email.message_from_bytes(got.content)["Received"]
    assert "by gw.test (district-gateway) with ESMTP id" in trace


async def test_fifty_concurrent_messages_arrive_complete(tmp_path, upstream, gateways):
    settings = write_settings(tmp_path, upstream.port)
    gw = await gateways(settings)
    bodies = [make_message(subject=f"msg {i}", body=f"number {i}\n", size=10_000)
              for i in range(50)]
    results = await asyncio.gather(*(send(gw.port, SENDER, [STUDENT], b) for b in bodies))
    assert all(errors == {} for errors, _ in results)
    received = sorted(strip_trace(m.content) for m in upstream.messages)
    assert received == sorted(bodies)


async def test_upstream_down_gives_4xx_and_nothing_delivered(tmp_path, gateways):
    dead = DeadPort()  # nothing listens there
    try:
        gw = await gateways(write_settings(tmp_path, dead.port))
        with pytest.raises(aiosmtplib.SMTPDataError) as info:
            await send(gw.port, SENDER, [STUDENT], make_message())
    finally:
        dead.close()
    assert info.value.code == 451


@pytest.mark.parametrize("setup, code", [
    (lambda b: setattr(b, "data_reply", "451 4.3.0 try again"), 451),
    (lambda b: setattr(b, "drop_in_data", True), 451),
    (lambda b: b.tempfail_rcpt.add(STUDENT), 451),
    (lambda b: setattr(b, "hang_data", 3.0), 451),
])
async def test_upstream_temporary_failures_become_451(tmp_path, upstream, setup, code, gateways):
    settings = write_settings(tmp_path, upstream.port, upstream_timeout=1)
    setup(upstream.behaviour)
    gw = await gateways(settings)
    with pytest.raises(aiosmtplib.SMTPResponseException) as info:
        await send(gw.port, SENDER, [STUDENT], make_message())
    assert info.value.code == code
    assert upstream.messages == []


async def test_permanent_refusal_of_every_recipient_is_passed_on(tmp_path, upstream, gateways):
    upstream.behaviour.refuse_rcpt.add(STUDENT)
    gw = await gateways(write_settings(tmp_path, upstream.port))
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await send(gw.port, SENDER, [STUDENT], make_message())
    assert info.value.code == 550 and "User unknown" in info.value.message


async def test_partial_refusal_delivers_others_and_bounces_to_sender(tmp_path, upstream, gateways):
    other = "other@students.example.org"
    upstream.behaviour.refuse_rcpt.add(other)
    gw = await gateways(write_settings(tmp_path, upstream.port))
    errors, _ = await send(gw.port, SENDER, [STUDENT, other], make_message())
    assert errors == {}
    await wait_for(lambda: len(upstream.messages) == 2)
    delivered, bounce = upstream.messages
    assert delivered.rcpt_tos == [STUDENT]
    assert bounce.mail_from in ("", "<>") and bounce.rcpt_tos == [SENDER]
    report = email.message_from_bytes(bounce.content)
    assert report.get_content_type() == "multipart/report"
    assert b"Final-Recipient: rfc822; other@students.example.org" in bounce.content
    assert b"Hi there" not in bounce.content  # the body never travels in a bounce


async def test_policy_reject_for_all_recipients_is_5xx(tmp_path, upstream, gateways):
    policy = ScriptedPolicy({STUDENT: Action.REJECT})
    gw = await gateways(write_settings(tmp_path, upstream.port), policy)
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await send(gw.port, SENDER, [STUDENT], make_message())
    assert info.value.code == 550 and "T1" in info.value.message
    assert upstream.messages == []


async def test_client_disconnect_mid_data_relays_nothing(tmp_path, upstream, gateways):
    gw = await gateways(write_settings(tmp_path, upstream.port))
    _reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    for line in (b"EHLO c\r\n", f"MAIL FROM:<{SENDER}>\r\n".encode(),
                 f"RCPT TO:<{STUDENT}>\r\n".encode(), b"DATA\r\n",
                 b"Subject: half\r\n\r\nonly part of the body\r\n"):
        writer.write(line)
        await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()
    await asyncio.sleep(0.3)
    assert upstream.messages == []


async def test_untrusted_client_cannot_relay_outside(tmp_path, upstream, gateways):
    settings = write_settings(tmp_path, upstream.port, trusted="192.0.2.0/24")
    gw = await gateways(settings)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        await send(gw.port, "spammer@outside.example.net", [OUTSIDER], make_message())
    [refusal] = info.value.recipients
    assert refusal.code == 554 and "5.7.1" in refusal.message
    # ...but mail for District recipients is accepted from anywhere.
    errors, _ = await send(gw.port, "parent@outside.example.net", [STUDENT], make_message())
    assert errors == {}
    assert [m.rcpt_tos for m in upstream.messages] == [[STUDENT]]


async def test_size_is_advertised_and_enforced(tmp_path, upstream, gateways):
    settings = write_settings(tmp_path, upstream.port, smtp="max_message_size: 20K")
    gw = await gateways(settings)
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=gw.port, start_tls=False)
    await client.connect()
    await client.ehlo()
    assert client.esmtp_extensions["size"] == str(20 * 1024)
    await client.quit()
    with pytest.raises(aiosmtplib.SMTPResponseException) as info:
        await send(gw.port, SENDER, [STUDENT], make_message(size=40_000))
    assert info.value.code == 552
    assert upstream.messages == []


async def test_a_look_alike_of_a_district_domain_is_not_district_mail(tmp_path, upstream,
                                                                      gateways):
    """A zero-width joiner is not nothing (UTS #46 non-transitional; IDNA 2003 dropped it):
    an outside client cannot relay through a look-alike of a District domain."""
    gw = await gateways(write_settings(tmp_path, upstream.port, trusted="10.0.0.0/8"))
    look_alike = STUDENT.replace("students", "stu\u200ddents")
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=gw.port, start_tls=False)
    await client.connect()
    errors, _ = await client.sendmail("someone@outside.example", [look_alike, STUDENT],
                                      make_message(), mail_options=["SMTPUTF8"])
    await client.quit()
    assert errors[look_alike][0] == 554
    assert upstream.messages[0].rcpt_tos == [STUDENT]


async def test_messages_past_the_in_flight_ceiling_get_452_and_memory_is_given_back(
        tmp_path, upstream, gateways):
    """One unfinished 700 KB message holds most of a 1 MB ceiling: a second one is read to
    its end without being kept and refused with 452 4.3.1; the first is then delivered, and
    everything it held is given back."""
    settings = write_settings(tmp_path, upstream.port,
                              smtp="max_message_size: 1M, max_in_flight: 1M")
    gw = await gateways(settings)
    body = b"Subject: big\r\n\r\n" + (b"x" * 78 + b"\r\n") * 8_750  # 700 KB
    first, second = await in_data(gw.port), await in_data(gw.port)
    first[1].write(body)
    await wait_for(lambda: gw.in_flight.used >= 400_000)  # the stream keeps the rest unread
    second[1].write(body + b".\r\n")
    assert (await asyncio.wait_for(second[0].readline(), 10)).startswith(b"452 4.3.1")
    first[1].write(b".\r\n")
    assert (await asyncio.wait_for(first[0].readline(), 10)).startswith(b"250")
    assert gw.in_flight.used == 0
    for reader, writer in (first, second):  # the refused session carries on
        writer.write(f"MAIL FROM:<{SENDER}>\r\n".encode())
        assert (await reader.readline()).startswith(b"250")
        writer.close()
    assert len(upstream.messages) == 1


def test_the_ceiling_cannot_be_below_the_largest_message(tmp_path):
    with pytest.raises(SourceErrors) as info:
        write_settings(tmp_path, 25, smtp="max_message_size: 10M, max_in_flight: 5M")
    assert "max_in_flight' must be at least smtp.max_message_size" in str(info.value)


async def test_help_lists_data_and_explains_it(tmp_path, upstream, gateways):
    gw = await gateways(write_settings(tmp_path, upstream.port))
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=gw.port, start_tls=False)
    await client.connect()
    await client.ehlo()
    listed = await client.execute_command(b"HELP")
    explained = await client.execute_command(b"HELP", b"DATA")
    await client.quit()
    assert listed.code == 250 and "DATA" in listed.message.split()
    assert (explained.code, explained.message) == (250, "Syntax: DATA")


async def test_too_many_recipients_get_452(tmp_path, upstream, gateways):
    settings = write_settings(tmp_path, upstream.port, smtp="max_recipients: 2")
    gw = await gateways(settings)
    rcpts = [f"s{i}@students.example.org" for i in range(3)]
    errors, _ = await send(gw.port, SENDER, rcpts, make_message())
    assert errors[rcpts[2]][0] == 452
    assert upstream.messages[0].rcpt_tos == rcpts[:2]


async def test_session_limit_answers_421(tmp_path, upstream, gateways):
    settings = write_settings(tmp_path, upstream.port, smtp="max_sessions: 1")
    gw = await gateways(settings)
    first = await asyncio.open_connection("127.0.0.1", gw.port)
    assert (await first[0].readline()).startswith(b"220")
    second = await asyncio.open_connection("127.0.0.1", gw.port)
    assert (await second[0].readline()).startswith(b"421 4.3.2")
    first[1].close()
    second[1].close()


async def raw_dialogue(port: int, payload: bytes) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    replies = []
    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), 3)
            if not line:
                break
            replies.append(line)
            if line.startswith(b"221"):
                break
    except TimeoutError:
        pass
    writer.close()
    return replies


async def test_smtp_smuggling_cannot_split_one_message(tmp_path, upstream, gateways):
    gw = await gateways(write_settings(tmp_path, upstream.port, smtp="bare_newline: reject"))
    smuggled = (f"EHLO c\r\nMAIL FROM:<{SENDER}>\r\nRCPT TO:<{STUDENT}>\r\nDATA\r\n"
                "Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@staff.example.org>\n"
                f"RCPT TO:<{STUDENT}>\nDATA\nSubject: smuggled\n\nsecond\r\n.\r\nQUIT\r\n")
    replies = await raw_dialogue(gw.port, smuggled.encode())
    codes = [r[:3] for r in replies]
    assert b"550" in codes  # bare LF refused as a whole
    assert upstream.messages == []


async def test_bare_newline_normalize_mode_relays_one_message(tmp_path, upstream, gateways):
    gw = await gateways(write_settings(tmp_path, upstream.port))  # normalize is the default
    smuggled = (f"EHLO c\r\nMAIL FROM:<{SENDER}>\r\nRCPT TO:<{STUDENT}>\r\nDATA\r\n"
                "Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@staff.example.org>\n"
                "\r\n.\r\nQUIT\r\n")
    await raw_dialogue(gw.port, smuggled.encode())
    [got] = upstream.messages
    # The lone dot was dot-stuffed on the way out: the upstream saw one message holding
    # both lines, not two messages.
    assert b"first\r\n.\r\nMAIL FROM:<evil@staff.example.org>\r\n" in got.content


async def test_overlong_line_is_refused(tmp_path, upstream, gateways):
    gw = await gateways(write_settings(tmp_path, upstream.port))
    with pytest.raises(aiosmtplib.SMTPResponseException) as info:
        await send(gw.port, SENDER, [STUDENT],
                   b"Subject: long\r\n\r\n" + b"a" * 20_000 + b"\r\n")
    assert info.value.code == 500
    assert upstream.messages == []


@pytest.mark.parametrize(("line_length", "line", "code"), [
    (None, 5_000, 250),     # the default (8,192) is above Postfix's 2,048: relayed
    (2_000, 1_998, 250),   # the limit counts the line with its CRLF
    (2_000, 1_999, 500),
])
async def test_smtp_line_length_sets_the_longest_body_line(tmp_path, upstream, gateways,
                                                           line_length, line, code):
    upstream.accept_long_lines()
    extra = {} if line_length is None else {"smtp": f"line_length: {line_length}"}
    gw = await gateways(write_settings(tmp_path, upstream.port, **extra))
    content = b"Subject: long\r\n\r\n" + b"a" * line + b"\r\n"
    if code == 250:
        errors, _ = await send(gw.port, SENDER, [STUDENT], content)
        assert errors == {}
        assert b"a" * line + b"\r\n" in upstream.messages[0].content
    else:
        with pytest.raises(aiosmtplib.SMTPResponseException) as info:
            await send(gw.port, SENDER, [STUDENT], content)
        assert info.value.code == code
        assert upstream.messages == []


async def test_pipeline_crash_without_store_answers_451(tmp_path, upstream, gateways):
    gw = await gateways(write_settings(tmp_path, upstream.port), inspector=ExplodingInspector())
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await send(gw.port, SENDER, [STUDENT], make_message())
    assert info.value.code == 451 and "4.3.0" in info.value.message
    assert "RuntimeError" not in info.value.message
    # The daemon keeps serving.
    gw.runtime = replace(gw.runtime, inspector=NullInspector())
    errors, _ = await send(gw.port, SENDER, [STUDENT], make_message())
    assert errors == {}


async def test_drain_finishes_in_flight_message_and_refuses_new(tmp_path, upstream):
    upstream.behaviour.hang_data = 1.0
    gw = await start_gateway(write_settings(tmp_path, upstream.port))
    port = gw.port
    in_flight = asyncio.create_task(send(port, SENDER, [STUDENT], make_message()))
    await wait_for(lambda: gw.busy == 1)
    drain = asyncio.create_task(gw.drain(10))
    await asyncio.sleep(0.1)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    errors, _ = await in_flight
    assert errors == {}
    await drain
    assert len(upstream.messages) == 1


@pytest.mark.skipif(subprocess.run(["which", "openssl"], capture_output=True).returncode,
                    reason="openssl not installed")
async def test_starttls_offered_and_can_be_required(tmp_path, upstream, gateways):
    cert, key = self_signed(tmp_path)
    tls = f"tls: {{cert: {cert}, key: {key}, require: true}}"
    settings = write_settings(tmp_path, upstream.port, smtp=tls)
    gw = await gateways(settings)
    def plain_then_tls() -> tuple[int, int]:
        with smtplib.SMTP("127.0.0.1", gw.port, timeout=10) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            refused = client.mail(SENDER)[0]
            client.starttls()
            client.ehlo()
            accepted = client.mail(SENDER)[0]
            return refused, accepted
    refused, accepted = await asyncio.to_thread(plain_then_tls)
    assert refused == 530 and accepted == 250


async def test_idle_client_is_disconnected_after_command_timeout(tmp_path, upstream, gateways):
    settings = write_settings(tmp_path, upstream.port, smtp="command_timeout: 1")
    gw = await gateways(settings)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    assert (await reader.readline()).startswith(b"220")
    started = asyncio.get_running_loop().time()
    rest = await asyncio.wait_for(reader.read(), 10)  # server closes the connection
    assert rest.startswith(b"421")
    assert asyncio.get_running_loop().time() - started < 9
    writer.close()


async def test_slow_but_steady_data_is_not_cut_off(tmp_path, upstream, gateways):
    """The DATA timeout is an idle timeout: a transfer longer than it, never silent for that
    long and keeping up `min_data_rate` (here 20 bytes a second), completes."""
    settings = write_settings(tmp_path, upstream.port,
                              smtp="command_timeout: 1, data_timeout: 1, min_data_rate: 20")
    gw = await gateways(settings)
    reader, writer = await in_data(gw.port)
    writer.write(b"Subject: slow\r\n\r\n")
    for i in range(8):  # 8 x 0.3 s = 2.4 s in total, more than the 1 s timeout
        writer.write(f"line {i}\r\n".encode())
        await asyncio.sleep(0.3)
    writer.write(b".\r\n")
    reply = await asyncio.wait_for(reader.readline(), 10)
    assert reply.startswith(b"250"), reply
    writer.close()
    assert len(upstream.messages) == 1


async def test_a_trickled_data_is_cut_off_at_its_deadline(tmp_path, upstream, gateways):
    """A byte every 0.2 s is never idle for data_timeout, but far below min_data_rate: the
    deadline of the DATA phase (1 s + 1/1000 s per byte) passes and the session ends."""
    settings = write_settings(tmp_path, upstream.port,
                              smtp="command_timeout: 1, data_timeout: 1, min_data_rate: 1000")
    gw = await gateways(settings)
    reader, writer = await in_data(gw.port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    rest = b""
    for _ in range(50):  # 10 s of trickling at most, reading what the server says meanwhile
        writer.write(b"x")
        try:
            rest = await asyncio.wait_for(reader.read(100), 0.2)
            break
        except TimeoutError:
            continue
    assert rest.startswith(b"421 4.4.2"), rest
    assert loop.time() - started < 5  # cut off near 1 s, not when the trickle ended
    writer.close()
    assert upstream.messages == []


async def in_data(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw session that has just been told 354."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    for line in (b"EHLO c\r\n", f"MAIL FROM:<{SENDER}>\r\n".encode(),
                 f"RCPT TO:<{STUDENT}>\r\n".encode(), b"DATA\r\n"):
        writer.write(line)
        while (await reader.readline())[3:4] != b" ":
            pass
    return reader, writer


@pytest.mark.parametrize(("trusted", "limit", "third"), [
    ("10.0.0.0/8", 2, b"421 4.7.0"),   # an outside client gets two sessions
    ("127.0.0.0/8", 2, b"220"),        # the district's own relays are not limited
    ("10.0.0.0/8", 0, b"220"),         # 0: no per-client limit
])
async def test_one_client_address_holds_at_most_its_share_of_sessions(
        tmp_path, upstream, gateways, trusted, limit, third):
    settings = write_settings(tmp_path, upstream.port, trusted=trusted,
                              smtp=f"max_sessions_per_client: {limit}")
    gw = await gateways(settings)
    held = [await asyncio.open_connection("127.0.0.1", gw.port) for _ in range(2)]
    for reader, _ in held:
        assert (await reader.readline()).startswith(b"220")
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    assert (await reader.readline()).startswith(third)
    writer.close()
    held[0][1].close()  # one session ends: its place is free again
    await wait_for(lambda: sum(gw.clients.values()) < 2 or limit == 0 or (trusted[0] == "1"
                   and trusted.startswith("127")))
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    assert (await reader.readline()).startswith(b"220")
    writer.close()
    held[1][1].close()


async def test_a_client_over_its_connection_rate_is_turned_away(tmp_path, upstream, gateways):
    settings = write_settings(tmp_path, upstream.port, trusted="10.0.0.0/8",
                              smtp="max_connections_per_minute: 3")
    gw = await gateways(settings)
    greetings = []
    for _ in range(4):
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        greetings.append(await reader.readline())
        writer.close()
    assert [g[:3] for g in greetings] == [b"220"] * 3 + [b"421"]
    assert greetings[3].startswith(b"421 4.7.0")


class SlowInspector:
    """Pure-Python CPU work for large messages, like a big attachment being parsed."""

    def inspect(self, raw: bytes):
        if len(raw) > 100_000:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                sum(range(1000))
        return Inspection()


async def test_big_message_inspection_does_not_stall_other_sessions(tmp_path, upstream,
                                                                     gateways):
    gw = await gateways(write_settings(tmp_path, upstream.port), inspector=SlowInspector())
    big = asyncio.create_task(send(gw.port, SENDER, [STUDENT], make_message(size=200_000)))
    await wait_for(lambda: gw.busy == 1)
    await send(gw.port, SENDER, [STUDENT], make_message(subject="small"))
    assert not big.done()  # the small message went through while the big one was inspected
    await big
    assert len(upstream.messages) == 2


@pytest.mark.parametrize("rcpt", ['"victim@gmail.example"@students.example.org',
                                  "victim%gmail.example@students.example.org",
                                  "gmail.example!victim@students.example.org"])
async def test_routing_forms_of_district_addresses_are_refused(tmp_path, upstream, gateways,
                                                                rcpt):
    """Postfix would route these to the outside domain: never accept them (open relay, DLP)."""
    gw = await gateways(write_settings(tmp_path, upstream.port, trusted="192.0.2.0/24"))
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        await send(gw.port, "someone@outside.example.net", [rcpt], make_message())
    [refusal] = info.value.recipients
    assert refusal.code == 550 and "5.7.1" in refusal.message
    assert upstream.messages == []


async def test_non_ascii_recipient_needs_smtputf8(tmp_path, upstream, gateways):
    gw = await gateways(write_settings(tmp_path, upstream.port))
    replies = await raw_dialogue(gw.port, (
        f"EHLO c\r\nMAIL FROM:<{SENDER}>\r\nRCPT TO:<\u00fcn\u00ef@students.example.org>\r\n"
        "QUIT\r\n").encode())
    assert any(r.startswith(b"553 5.6.7") for r in replies)


async def test_recipients_are_relayed_as_the_client_spelled_them(tmp_path, upstream, gateways):
    """Classification normalises (case, IDN); delivery must not: the upstream may lack
    SMTPUTF8 for a Unicode domain, and a local part's case belongs to the receiving system."""
    gw = await gateways(write_settings(tmp_path, upstream.port))
    rcpts = ["Student.Name@Students.Example.Org", "user@xn--bcher-kva.example"]
    errors, _ = await send(gw.port, SENDER, rcpts, make_message())
    assert errors == {}
    assert [m.rcpt_tos for m in upstream.messages] == [rcpts]


class HungInspector:
    """Inspection that outlives the processing deadline (a pathological attachment)."""

    def inspect(self, raw: bytes):
        time.sleep(2.5)
        return NullInspector().inspect(raw)


async def test_processing_deadline_answers_451_and_relays_nothing(tmp_path, upstream, gateways):
    settings = write_settings(tmp_path, upstream.port)
    settings = replace(settings, smtp=replace(settings.smtp, processing_deadline=0.5))
    gw = await gateways(settings, inspector=HungInspector())
    # A document part sends the decision to a thread, so the loop stays free to time it out.
    content = make_message().replace(b"Content-Type: text/plain",
                                     b"Content-Disposition: attachment\r\n"
                                     b"Content-Type: application/octet-stream")
    started = time.monotonic()
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await send(gw.port, SENDER, [STUDENT], content)
    assert info.value.code == 451 and "timed out" in info.value.message
    assert time.monotonic() - started < 2.0
    await asyncio.sleep(2.5)  # the abandoned inspection finishes; its result goes nowhere
    assert upstream.messages == []


async def test_the_message_line_is_logged_once_just_after_the_reply(
        tmp_path: Path, upstream: Any, gateways: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client does not wait for the log line (0.1-0.4 ms at `info`) or the metrics, and
    both still come, with the reply the client got."""
    gw = await gateways(write_settings(tmp_path, upstream.port), inspector=NullInspector())
    relayed = metrics.MESSAGES.labels(outcome="relayed")
    before = relayed._value.get()
    at_reply: list[tuple[bool, float]] = []
    real_push = GatewaySMTP.push

    async def push(self: GatewaySMTP, status: str) -> None:
        if status.startswith("250 2.0.0"):
            at_reply.append((any(e["event"] == "message" for e in events),
                             relayed._value.get() - before))
        await real_push(self, status)

    monkeypatch.setattr(GatewaySMTP, "push", push)
    with structlog.testing.capture_logs() as events:
        _, reply = await send(gw.port, SENDER, [STUDENT], make_message())
        await asyncio.sleep(0)
    assert at_reply == [(False, 0)]
    [line] = [e for e in events if e["event"] == "message"]
    assert line["reply"] == "250 " + reply and line["outcome"] == "relayed"
    assert relayed._value.get() - before == 1


async def test_a_failing_metric_or_log_line_does_not_change_the_reply(
        tmp_path: Path, upstream: Any, gateways: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Accounting runs after the reply: a bug there must not turn a delivered message into a
    451 (the client would retry and the message arrive twice), nor stop the daemon."""

    def broken(**_labels: str) -> None:
        raise RuntimeError("metrics backend gone")

    gw = await gateways(write_settings(tmp_path, upstream.port), inspector=NullInspector())
    monkeypatch.setattr(metrics.MESSAGES, "labels", broken)
    with structlog.testing.capture_logs() as events:
        for _ in range(2):
            errors, reply = await send(gw.port, SENDER, [STUDENT], make_message())
            assert errors == {} and reply.startswith("2.0.0 Ok")
        await asyncio.sleep(0)
    assert len(upstream.messages) == 2
    # The message line still comes (it is written first), and the failure is named, once
    # per message, without the message's addresses.
    assert [e["event"] for e in events if e["event"] in ("message", "metrics_failed")] == [
        "message", "metrics_failed", "message", "metrics_failed"]
    assert STUDENT not in repr([e for e in events if e["event"] == "metrics_failed"])


async def read_reply(reader: asyncio.StreamReader) -> str:
    """One (possibly multi-line) SMTP reply, its lines joined by newlines."""
    lines = []
    while True:
        line = (await asyncio.wait_for(reader.readline(), 10)).decode().rstrip("\r\n")
        lines.append(line)
        if line[3:4] != "-":
            return "\n".join(lines)


@contextlib.asynccontextmanager
async def greeted(port: int) -> AsyncIterator[tuple[asyncio.StreamReader,
                                                    asyncio.StreamWriter, str]]:
    """A raw client session after the greeting and EHLO: (reader, writer, EHLO reply)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert (await read_reply(reader)).startswith("220")
        writer.write(b"EHLO client.example\r\n")
        yield reader, writer, await read_reply(reader)
    finally:
        writer.close()


async def test_a_pipelining_client_gets_every_reply_in_order(
        tmp_path: Path, upstream: Any, gateways: Any) -> None:
    """PIPELINING is announced; MAIL, three RCPTs (one refused) and DATA sent in one write
    are answered one by one, in order, and only the accepted recipients get the message."""
    gw = await gateways(write_settings(tmp_path, upstream.port), inspector=NullInspector())
    async with greeted(gw.port) as (reader, writer, ehlo):
        assert "250-PIPELINING" in ehlo.splitlines()
        writer.write(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{STUDENT}>\r\n"
                     f"RCPT TO:<a%b@{OUTSIDER.split('@')[1]}>\r\nRCPT TO:<{OUTSIDER}>\r\n"
                     "DATA\r\n".encode())
        replies = [(await read_reply(reader))[:3] for _ in range(5)]
        assert replies == ["250", "250", "550", "250", "354"]
        writer.write(make_message().replace(b"\n", b"\r\n") + b".\r\n")
        assert (await read_reply(reader)).startswith("250 2.0.0")
        writer.write(b"QUIT\r\n")
        assert (await read_reply(reader)).startswith("221")
    [received] = upstream.messages
    assert received.rcpt_tos == [STUDENT, OUTSIDER]


def record_writes(monkeypatch: pytest.MonkeyPatch) -> tuple[list[bytes], Any]:
    """Every StreamWriter.write from now on, as (what was written, the unrecorded write for
    the test's own client)."""
    writes: list[bytes] = []
    real_write = asyncio.StreamWriter.write

    def write(self: asyncio.StreamWriter, data: bytes) -> None:
        writes.append(bytes(data))
        real_write(self, data)

    monkeypatch.setattr(asyncio.StreamWriter, "write", write)
    return writes, real_write


async def test_replies_to_a_pipelined_group_go_out_in_one_write(
        tmp_path: Path, upstream: Any, gateways: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 2920 3.2, as Postfix's smtpd: the 250s wait while the next command is already
    buffered and leave with the 354; one command at a time still gets each reply at once."""
    gw = await gateways(write_settings(tmp_path, upstream.port), inspector=NullInspector())
    async with greeted(gw.port) as (reader, writer, _ehlo):
        writes, real_write = record_writes(monkeypatch)
        group = (f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{STUDENT}>\r\nRCPT TO:<{OUTSIDER}>\r\n"
                 "DATA\r\n").encode()
        real_write(writer, group)
        assert [(await read_reply(reader))[:3] for _ in range(4)] == ["250"] * 3 + ["354"]
        real_write(writer, make_message().replace(b"\n", b"\r\n") + b".\r\n")
        assert (await read_reply(reader)).startswith("250 2.0.0")
        from_gateway = [w for w in writes if w[:3].isdigit()]
        assert from_gateway[0].count(b"\r\n") == 4 and b"\r\n354 " in from_gateway[0]
        writes.clear()
        for line in (f"MAIL FROM:<{SENDER}>", f"RCPT TO:<{STUDENT}>", "RSET"):
            real_write(writer, line.encode() + b"\r\n")
            assert (await read_reply(reader)).startswith("250")
        assert len([w for w in writes if w[:3].isdigit()]) == 3  # nothing held back
    assert len(upstream.messages) == 1


async def test_a_client_streaming_commands_does_not_make_us_hold_replies_unbounded(
        tmp_path: Path, upstream: Any, gateways: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of NOOPs in one go, their replies unread: what is held back is flushed every
    HOLD_LIMIT bytes (back-pressure as without batching), and every reply comes, in order."""
    gw = await gateways(write_settings(tmp_path, upstream.port), inspector=NullInspector())
    async with greeted(gw.port) as (reader, writer, _ehlo):
        writes, real_write = record_writes(monkeypatch)
        real_write(writer, b"NOOP\r\n" * 3000)
        replies = [await read_reply(reader) for _ in range(3000)]
    assert all(r.startswith("250") for r in replies)
    sizes = [len(w) for w in writes]
    assert max(sizes) <= BatchedRepliesSMTP.HOLD_LIMIT + 100 and len(sizes) > 3


async def test_a_pipelined_group_with_no_recipient_left_gets_no_354(
        tmp_path: Path, upstream: Any, gateways: Any) -> None:
    gw = await gateways(write_settings(tmp_path, upstream.port), inspector=NullInspector())
    async with greeted(gw.port) as (reader, writer, _ehlo):
        writer.write(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<a%b@example.net>\r\nDATA\r\n"
                     "RSET\r\n".encode())
        replies = [(await read_reply(reader))[:3] for _ in range(4)]
        assert replies == ["250", "550", "503", "250"]
    assert upstream.messages == []
