"""The gateway with a real Postfix, in each way the operations guide deploys it.

After-queue (`content_filter`, deployment B): client -> Postfix (queued) -> gateway ->
Postfix reinjection -> mailbox. Before-queue (`smtpd_proxy_filter`): the gateway answers the
client inside Postfix's SMTP session. In front of Postfix (deployment A): client -> gateway ->
Postfix -> mailbox. The shipped policies decide (staff to a student's personal address is
held, P1); one added rule refuses a confidential project named to outsiders.

What is checked is what a Postfix admin sees: the queue, the delivery, the bounce, and the
`status=` lines in Postfix's own mail.log.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from email.message import EmailMessage
from email.policy import SMTP

import aiosmtplib
import pytest
from structlog.testing import capture_logs

from gateway.quarantine.base import QuarantineStore
from tests.harness import run_cli, send, wait_for
from tests.integration.postfix.conftest import REFUSE_PHRASE, GatewayControl, Sink
from tests.integration.postfix.instance import PostfixInstance

TEACHER = "jsmith@staff.district230.example"
STUDENT = "alex.jones@students.district230.example"
PERSONAL = "alexj2009@gmail.example"          # the same student's personal address
OUTSIDER = "partner@vendor.example"
SLOW = 30  # seconds a delivery may take through Postfix's queue on a busy machine


def message(to: list[str], body: str = "See you at the trip.") -> tuple[str, bytes]:
    """A message with a unique subject, so each test finds its own mail."""
    subject = f"Trip {secrets.token_hex(4)}"
    msg = EmailMessage(policy=SMTP)
    msg["From"] = TEACHER
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{secrets.token_hex(8)}@staff.district230.example>"
    msg.set_content(body)
    return subject, msg.as_bytes()


def arrived(sink: Sink, subject: str) -> list:
    """Copies of the test's message (not bounces, which quote its headers)."""
    return [m for m in sink.messages
            if m.mail_from != "<>" and f"Subject: {subject}".encode() in m.content]


def bounces_to(sink: Sink, sender: str, about: str) -> list:
    return [m for m in sink.messages if m.mail_from == "<>" and m.rcpt_tos == [sender]
            and about.encode() in m.content]


async def log_line(postfix: PostfixInstance, pattern: str) -> str:
    """The latest mail.log line matching `pattern`, once Postfix has written it."""
    try:
        await wait_for(lambda: bool(postfix.log_lines(pattern)), SLOW)
    except AssertionError:
        tail = "\n".join(postfix.log_text().splitlines()[-30:])
        raise AssertionError(
            f"no mail.log line matches {pattern!r}; the log ends:\n{tail}") from None
    return postfix.log_lines(pattern)[-1]


# --- after-queue content_filter ---------------------------------------------------------------

async def test_after_queue_relays_one_copy_holds_the_other_and_mail_log_says_so(
        postfix: PostfixInstance, sink: Sink, gateway, store: QuarantineStore) -> None:
    subject, content = message([STUDENT, PERSONAL])
    await send(postfix.ports.after_queue, TEACHER, [STUDENT, PERSONAL], content)
    await wait_for(lambda: bool(arrived(sink, subject)), SLOW)
    [copy] = arrived(sink, subject)
    assert copy.rcpt_tos == [STUDENT] and copy.mail_from == TEACHER
    [entry] = store.list_entries()
    assert entry.held_recipients == (PERSONAL,) and "P1" in entry.rules
    # Postfix logs the gateway's reply for both recipients: the hold is visible, with its id.
    held = rf"to=<{re.escape(PERSONAL)}>.*relay=127\.0\.0\.1\[127\.0\.0\.1\]:" \
           rf"{postfix.ports.gateway}.*dsn=2\.7\.0, status=sent \(250 2\.7\.0 Ok: queued as " \
           rf"\w+, 1 of 2 held for review, id={entry.id}\)"
    await log_line(postfix, held)
    await log_line(postfix, rf"to=<{re.escape(STUDENT)}>.*status=sent \(250 2\.7\.0 .*"
                            rf"id={entry.id}\)")


async def test_after_queue_release_delivers_the_held_copy_through_postfix(
        postfix: PostfixInstance, sink: Sink, gateway, store: QuarantineStore,
        settings) -> None:
    subject, content = message([PERSONAL])
    await send(postfix.ports.after_queue, TEACHER, [PERSONAL], content)
    await log_line(postfix, rf"to=<{re.escape(PERSONAL)}>.*status=sent \(250 2\.7\.0 .*"
                            r"1 of 1 held for review")
    [entry] = store.list_entries()
    assert not arrived(sink, subject)
    result = await run_cli("quarantine", "release", entry.id, "--reason", "parent asked",
                           "--operator", "principal", "--config", str(settings.source))
    assert result.returncode == 0, result.stderr
    await wait_for(lambda: bool(arrived(sink, subject)), SLOW)
    [copy] = arrived(sink, subject)
    assert copy.rcpt_tos == [PERSONAL] and copy.mail_from == TEACHER
    # The release went in through Postfix's reinjection port and out to the mailbox.
    await log_line(postfix, rf"to=<{re.escape(PERSONAL)}>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
                            rf"{postfix.ports.sink}.*status=sent")


async def test_after_queue_refusal_becomes_a_postfix_bounce(
        postfix: PostfixInstance, sink: Sink, gateway) -> None:
    subject, content = message([OUTSIDER], body=f"Notes on {REFUSE_PHRASE}.")
    await send(postfix.ports.after_queue, TEACHER, [OUTSIDER], content)
    line = await log_line(postfix, rf"to=<{re.escape(OUTSIDER)}>.*status=bounced")
    assert "said: 550 5.7.1 Message refused by district policy (CONFIDENTIAL)" in line
    await wait_for(lambda: bool(bounces_to(sink, TEACHER, subject)), SLOW)
    [bounce] = bounces_to(sink, TEACHER, subject)
    assert b"Diagnostic-Code: smtp; 550 5.7.1 Message refused by district policy" in \
        bounce.content
    assert not [m for m in sink.messages if OUTSIDER in m.rcpt_tos]


async def test_after_queue_partial_refusal_is_accepted_and_the_gateway_bounces(
        postfix: PostfixInstance, sink: Sink, gateway) -> None:
    subject, content = message([STUDENT, OUTSIDER], body=f"Notes on {REFUSE_PHRASE}.")
    await send(postfix.ports.after_queue, TEACHER, [STUDENT, OUTSIDER], content)
    await log_line(postfix, rf"to=<{re.escape(OUTSIDER)}>.*status=sent \(250 2\.7\.0 Ok: "
                            r"queued as \w+, 1 of 2 refused, bounce to sender\)")
    await wait_for(lambda: bool(arrived(sink, subject)), SLOW)
    assert [m.rcpt_tos for m in arrived(sink, subject)] == [[STUDENT]]
    # The gateway's own DSN, relayed through Postfix to the sender.
    await wait_for(lambda: bool(bounces_to(sink, TEACHER, OUTSIDER)), SLOW)


async def test_after_queue_gateway_down_defers_then_delivers_after_a_flush(
        postfix: PostfixInstance, sink: Sink, gateway_control: GatewayControl) -> None:
    subject, content = message([STUDENT])
    await send(postfix.ports.after_queue, TEACHER, [STUDENT], content)
    line = await log_line(postfix, rf"to=<{re.escape(STUDENT)}>.*status=deferred")
    assert f"connect to 127.0.0.1[127.0.0.1]:{postfix.ports.gateway}: Connection refused" \
        in line
    assert not postfix.queue_empty()
    await gateway_control.start()
    postfix.flush()
    await wait_for(lambda: bool(arrived(sink, subject)), SLOW)
    await log_line(postfix, rf"to=<{re.escape(STUDENT)}>.*:{postfix.ports.gateway},.*"
                            r"status=sent \(250 2\.0\.0 Ok: queued as")
    await wait_for(postfix.queue_empty, SLOW)


# --- before-queue smtpd_proxy_filter ----------------------------------------------------------

async def test_before_queue_the_client_gets_the_gateways_reply(
        postfix: PostfixInstance, sink: Sink, gateway, store: QuarantineStore) -> None:
    subject, content = message([STUDENT, PERSONAL])
    errors, reply = await send(postfix.ports.before_queue, TEACHER, [STUDENT, PERSONAL],
                               content)
    [entry] = store.list_entries()
    assert errors == {}
    assert re.fullmatch(rf"2\.7\.0 Ok: queued as \w+, 1 of 2 held for review, id={entry.id}",
                        reply), reply
    await wait_for(lambda: bool(arrived(sink, subject)), SLOW)
    assert [m.rcpt_tos for m in arrived(sink, subject)] == [[STUDENT]]


async def test_before_queue_refusal_reaches_the_client_and_nothing_is_queued(
        postfix: PostfixInstance, sink: Sink, gateway) -> None:
    _subject, content = message([OUTSIDER], body=f"Notes on {REFUSE_PHRASE}.")
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await send(postfix.ports.before_queue, TEACHER, [OUTSIDER], content)
    assert refused.value.code == 550
    assert refused.value.message == "5.7.1 Message refused by district policy (CONFIDENTIAL)"
    await log_line(postfix, r"proxy-reject: END-OF-MESSAGE: 550 5\.7\.1 Message refused")
    assert postfix.queue_empty()  # the client was told; Postfix owes nobody a bounce


async def test_before_queue_gateway_down_is_a_tempfail_the_client_retries(
        postfix: PostfixInstance, sink: Sink, gateway_control: GatewayControl) -> None:
    subject, content = message([STUDENT])
    with pytest.raises(aiosmtplib.SMTPResponseException) as deferred:
        await send(postfix.ports.before_queue, TEACHER, [STUDENT], content)
    assert 400 <= deferred.value.code < 500
    await gateway_control.start()
    errors, reply = await send(postfix.ports.before_queue, TEACHER, [STUDENT], content)
    assert errors == {} and reply.startswith("2.0.0 Ok: queued as ")
    await wait_for(lambda: bool(arrived(sink, subject)), SLOW)


# --- the gateway in front of Postfix (deployment A) -------------------------------------------

async def test_in_front_of_postfix_mail_reaches_the_mailbox_through_it(
        postfix: PostfixInstance, sink: Sink, gateway) -> None:
    subject, content = message([STUDENT, PERSONAL])
    errors, reply = await send(gateway.port, TEACHER, [STUDENT, PERSONAL], content)
    assert errors == {} and reply.startswith("2.7.0 Ok: queued as ")
    await wait_for(lambda: bool(arrived(sink, subject)), SLOW)
    assert [m.rcpt_tos for m in arrived(sink, subject)] == [[STUDENT]]
    await log_line(postfix, rf"to=<{re.escape(STUDENT)}>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
                            rf"{postfix.ports.sink}.*status=sent")


async def test_in_front_of_postfix_down_is_a_tempfail_then_delivered(
        postfix: PostfixInstance, sink: Sink, gateway) -> None:
    """The gateway's upstream is down: the client is told to retry, the gateway's log says
    which server and why; once Postfix is back, the retry is delivered."""
    subject, content = message([STUDENT])
    await asyncio.to_thread(postfix.stop)
    try:
        with capture_logs() as logs, pytest.raises(aiosmtplib.SMTPDataError) as deferred:
            await send(gateway.port, TEACHER, [STUDENT], content)
    finally:
        await asyncio.to_thread(postfix.start)
    assert (deferred.value.code, deferred.value.message) == (
        451, "4.4.1 upstream unreachable, try again later")
    [warning] = [e for e in logs if e["event"] == "upstream_deferred"]
    assert (warning["host"], warning["port"]) == ("127.0.0.1", postfix.ports.reinject)
    assert "ConnectionRefusedError" in warning["cause"]
    errors, reply = await send(gateway.port, TEACHER, [STUDENT], content)
    assert errors == {} and reply.startswith("2.0.0 Ok: queued as ")
    await wait_for(lambda: len(arrived(sink, subject)) == 1, SLOW)
