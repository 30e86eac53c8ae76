"""The shipped configuration end to end over SMTP: real directory, inspection, policy, store."""

from __future__ import annotations

import asyncio
import email
import hashlib
import io
import json
import shutil
import sys
from email.policy import default as default_policy
from pathlib import Path

import aiosmtplib
import pytest

from gateway.cli import main as cli
from gateway.config import LogSettings, load_settings
from gateway.logprivacy import student_pseudonym
from gateway.quarantine import open_store
from gateway.runtime import load_runtime
from gateway.service.daemon import Daemon
from gateway.service.listener import Gateway
from gateway.service.logsetup import configure_logging
from tests.factories import REPO, make_message
from tests.harness import send, wait_for

STAFF = "jsmith@staff.district230.example"
SUPERVISOR = "principal@staff.district230.example"
STUDENT = "alex.jones@students.district230.example"
STUDENT_PERSONAL = "alexj2009@gmail.example"
# Sender authentication asks a loopback port where nothing listens: refused at once, so the
# untrusted client's mail is decided as "not verified" without leaving the machine.
OFFLINE_DNS = "\nauthentication: {resolvers: ['127.0.0.1:9'], timeout: 0.5}\n"


@pytest.fixture
def config(tmp_path, upstream) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config", folder)
    path = folder / "gateway.yaml"
    text = path.read_text().replace("port: 10025", "port: 0").replace(
        "port: 10026", f"port: {upstream.port}").replace(
        'metrics: {listen: "127.0.0.1:9125"}', "")
    path.write_text(text)
    return path


async def start(config: Path) -> Gateway:
    settings = load_settings(config)
    gateway = Gateway(settings, load_runtime(settings), open_store(settings))
    await gateway.start()
    return gateway


async def stop(gateway: Gateway) -> None:
    await gateway.drain(0)
    assert gateway.store is not None
    gateway.store.close()


def plain(subject: str, body: str, *, sender: str, to: str) -> bytes:
    """As a mail client sends it: CRLF, no Message-ID."""
    return make_message(subject, body, sender=sender, to=to, message_id=None)


async def test_split_relays_district_copy_and_holds_personal_copy(config, upstream):
    gw = await start(config)
    try:
        content = plain("Field trip", "Bring a lunch.", sender=STAFF, to=STUDENT)
        errors, _ = await send(gw.port, STAFF, [STUDENT, STUDENT_PERSONAL], content)
        assert errors == {}
        assert [m.rcpt_tos for m in upstream.messages] == [[STUDENT]]
        [entry] = gw.store.list_entries()
        assert entry.held_recipients == (STUDENT_PERSONAL,)
        assert "P1" in entry.rules
    finally:
        await stop(gw)


async def test_a_hold_that_notifies_the_sender_sends_the_notice(config, upstream):
    """A notice is follow-up work of its own (no bounce, no contact record): it must go out."""
    policies = config.parent / "policies.yaml"
    text = policies.read_text()
    p1 = "    exempt: [P3]\n    action: hold\n\n  # P2"
    assert p1 in text
    policies.write_text(text.replace(p1, "    exempt: [P3]\n    action: hold\n"
                                         "    notify: [sender]\n\n  # P2", 1))
    gw = await start(config)
    try:
        content = plain("hi", "Text me", sender=STAFF, to=STUDENT_PERSONAL)
        errors, _ = await send(gw.port, STAFF, [STUDENT_PERSONAL], content)
        assert errors == {}
        await wait_for(lambda: len(upstream.messages) == 1)
        [notice] = upstream.messages
        assert notice.rcpt_tos == [STAFF]
        assert email.message_from_bytes(notice.content)["Auto-Submitted"] == "auto-generated"
        assert [e.held_recipients for e in gw.store.list_entries()] == [(STUDENT_PERSONAL,)]
    finally:
        await stop(gw)


async def test_a_failed_bounce_to_a_student_is_logged_without_the_address(config, upstream):
    """The upstream refuses one recipient (a bounce goes to the sender, a student) and then
    tempfails the bounce, quoting the student's address: the dsn_failed line redacts it."""
    other = "mbrown@staff.district230.example"
    upstream.behaviour.refuse_rcpt = {other}
    upstream.behaviour.tempfail_rcpt = {STUDENT_PERSONAL}
    buffer = io.StringIO()
    configure_logging(LogSettings("info", "json"), stream=buffer)
    gw = await start(config)
    try:
        content = plain("question", "about homework", sender=STUDENT_PERSONAL, to=STAFF)
        errors, _ = await send(gw.port, STUDENT_PERSONAL, [STAFF, other], content)
        assert errors == {}  # one copy delivered: 250, and a bounce for the other
        await wait_for(lambda: '"dsn_failed"' in buffer.getvalue())
    finally:
        await stop(gw)
        configure_logging(LogSettings(), stream=sys.stdout)
    log = buffer.getvalue()
    [line] = [json.loads(x) for x in log.splitlines() if '"dsn_failed"' in x]
    assert line["upstream_reply"].startswith("450") and student_pseudonym(
        STUDENT_PERSONAL) in line["upstream_reply"]
    assert "alexj2009" not in log


async def test_only_unannotated_copies_skip_the_relays_line_end_check(config, upstream):
    """The server made the received bytes CRLF-only; an annotated copy is rebuilt by the
    email package, so only the copy that is the received bytes is sent unchecked."""
    gw = await start(config)
    calls: list[bool] = []
    real_send = gw.relay.send

    async def send_spy(*args, crlf_only=False, **kwargs):
        calls.append(crlf_only)
        return await real_send(*args, crlf_only=crlf_only, **kwargs)

    gw.relay.send = send_spy  # the executor holds this same Relay
    try:
        for sender, to in [(STAFF, STUDENT), (STUDENT_PERSONAL, STAFF)]:  # relay; P5 annotate
            errors, _ = await send(gw.port, sender, [to], plain("hi", "hello", sender=sender,
                                                                to=to))
            assert errors == {}
    finally:
        await stop(gw)
    assert calls == [True, False]
    annotated = email.message_from_bytes(upstream.messages[1].content)
    assert annotated["X-District-Student-Contact"] == "personal-account"


async def test_p5_notice_and_p6_supervisor_after_restart(config, upstream):
    """Two contacts, a restart, a third: the history survived and the supervisor is told."""
    for round_ in range(3):
        gw = await start(config)
        try:
            content = plain(f"question {round_}", "Can you help with the homework?",
                            sender=STUDENT_PERSONAL, to=STAFF)
            errors, _ = await send(gw.port, STUDENT_PERSONAL, [STAFF], content)
            assert errors == {}
        finally:
            await stop(gw)
    to_staff = [m for m in upstream.messages if m.rcpt_tos == [STAFF]]
    assert len(to_staff) == 3
    for copy in to_staff:
        msg = email.message_from_bytes(copy.content, policy=default_policy)
        assert STUDENT in msg.get_body(("plain",)).get_content()  # reply to the District account
    notices = [m for m in upstream.messages if m.rcpt_tos == [SUPERVISOR]]
    assert len(notices) == 1  # only the third contact notifies
    notice = email.message_from_bytes(notices[0].content, policy=default_policy)
    assert "Jane Smith" in notice.get_body(("plain",)).get_content()


async def test_reload_with_broken_policy_keeps_the_old_one(config, upstream):
    settings = load_settings(config)
    store = open_store(settings)
    daemon = Daemon(str(config), settings, load_runtime(settings), store)
    old_policy = daemon.gateway.runtime.policy
    policies = config.parent / "policies.yaml"
    good = policies.read_text()
    policies.write_text(good.replace("action: hold", "action: hodl", 1))
    assert await daemon.reload() is False
    assert daemon.gateway.runtime.policy is old_policy
    policies.write_text(good)
    assert await daemon.reload() is True
    assert daemon.gateway.runtime.policy is not old_policy
    store.close()


async def test_logs_carry_no_student_data(config, upstream):
    """Numbers, names, SSNs and a tell-tale file name reach the quarantine, never the log."""
    buffer = io.StringIO()
    configure_logging(LogSettings("debug", "json"), stream=buffer)
    gw = await start(config)
    try:
        msg = email.message.EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = STAFF, "someone@outside.example.net", "records"
        msg.set_content("Alex Jones, student ID 482913, grades attached. SSN: 219-45-6780")
        msg.add_attachment(b"Student ID,Name,GPA\n482913,Alex Jones,3.2\n517204,Sam Lee,2.9\n",
                           maintype="text", subtype="csv", filename="Alex_Jones_IEP.csv")
        content = msg.as_bytes(policy=default_policy.clone(linesep="\r\n"))
        errors, _ = await send(gw.port, STAFF, ["someone@outside.example.net"], content)
        assert errors == {}
        [entry] = gw.store.list_entries()
        assert {"P7", "P9"} <= set(entry.rules)
    finally:
        await stop(gw)
        configure_logging(LogSettings(), stream=sys.stdout)
    log = buffer.getvalue()
    assert '"event": "message"' in log and "student_number" in log  # findings are logged...
    for secret in ("482913", "517204", "219-45-6780", "Alex", "Jones", "Sam Lee"):
        assert secret not in log  # ...but never their values or the file's name


async def test_a_students_address_is_logged_as_a_pseudonym(config, upstream):
    """A student's address is student data: the message line names the sender by a digest
    (the same for any spelling of the address), staff senders by their address."""
    buffer = io.StringIO()
    configure_logging(LogSettings("info", "json"), stream=buffer)
    gw = await start(config)
    try:
        for sender, to in [(STUDENT_PERSONAL, STAFF), ("Alex.Jones@Students.District230.example",
                                                       STAFF), (STAFF, SUPERVISOR)]:
            errors, _ = await send(gw.port, sender, [to], plain("hi", "hello", sender=sender,
                                                                to=to))
            assert errors == {}
        await asyncio.sleep(0)
    finally:
        await stop(gw)
        configure_logging(LogSettings(), stream=sys.stdout)
    log = buffer.getvalue()
    senders = [json.loads(line)["mail_from"] for line in log.splitlines()
               if '"event": "message"' in line]

    def digest(address: str) -> str:
        return "student:" + hashlib.sha256(address.encode()).hexdigest()[:12]

    assert senders == [digest(STUDENT_PERSONAL), digest(STUDENT), STAFF]
    assert "alexj2009" not in log.lower() and "alex.jones" not in log.lower()


async def test_an_upstream_reply_quoting_a_students_address_is_logged_redacted(config,
                                                                                upstream):
    """Servers quote the address they refuse; in our log that quote is a pseudonym too."""
    upstream.behaviour.refuse_rcpt = {STUDENT}
    buffer = io.StringIO()
    configure_logging(LogSettings("info", "json"), stream=buffer)
    gw = await start(config)
    try:
        # Every recipient refused: the upstream's 550 is passed on at the end of data.
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await send(gw.port, STAFF, [STUDENT], plain("hi", "hello", sender=STAFF,
                                                         to=STUDENT))
        assert refused.value.code == 550
        await asyncio.sleep(0)
    finally:
        await stop(gw)
        configure_logging(LogSettings(), stream=sys.stdout)
    log = buffer.getvalue()
    [event] = [json.loads(line) for line in log.splitlines() if '"event": "message"' in line]
    assert event["outcome"] == "rejected"
    assert student_pseudonym(STUDENT) in event["reply"]
    assert "alex.jones" not in log.lower()


async def test_release_applies_the_annotations_the_held_copy_would_have_had(config, upstream):
    """Held by P10 and annotated by P13: the released copy carries the P13 marks too."""
    text = config.read_text().replace('trusted_networks: [127.0.0.0/8, "::1/128"]',
                                      "trusted_networks: [192.0.2.0/24]") + OFFLINE_DNS
    assert text != config.read_text()
    config.write_text(text)
    gw = await start(config)
    try:
        content = plain("hello", "Nobody likes you.", sender=STAFF, to=STUDENT)
        errors, _ = await send(gw.port, "spoof@evil.example", [STUDENT], content)
        assert errors == {} and upstream.messages == []
        [entry] = gw.store.list_entries()
        assert {"P10", "P13"} <= set(entry.rules)
    finally:
        await stop(gw)
    status = await asyncio.to_thread(cli, ["quarantine", "release", entry.id, "--reason",
                                           "reviewed", "--config", str(config)])
    assert status == 0
    [released] = upstream.messages
    msg = email.message_from_bytes(released.content, policy=default_policy)
    assert msg["Subject"].startswith("[UNVERIFIED]")
    assert msg["X-District-Sender-Verified"] == "no"


TEACHER_HOME = "jane.smith.home@gmail.example"
OTHER_STUDENT = "sam.lee@students.district230.example"


async def test_p14_student_to_teacher_personal_address_is_held(config, upstream):
    gw = await start(config)
    try:
        content = plain("essay", "Can you read my draft tonight?", sender=STUDENT,
                        to=TEACHER_HOME)
        errors, _ = await send(gw.port, STUDENT, [TEACHER_HOME], content)
        assert errors == {}
        assert upstream.messages == []
        [entry] = gw.store.list_entries()
        assert entry.held_recipients == (TEACHER_HOME,) and entry.rules == ("P14",)
    finally:
        await stop(gw)


async def test_p15_reply_to_personal_and_p7_another_students_records(config, upstream):
    """One message, two students: the copy steering to a gmail Reply-To is held (P15) for
    both; a second message about Sam goes to Sam and is held for Alex (P7)."""
    gw = await start(config)
    try:
        steer = plain("practice", "Send me the video when you can.", sender=STAFF,
                      to=STUDENT).replace(b"\r\n\r\n", f"\r\nReply-To: {TEACHER_HOME}"
                                          "\r\n\r\n".encode(), 1)
        errors, _ = await send(gw.port, STAFF, [STUDENT], steer)
        assert errors == {} and upstream.messages == []
        records = plain("notes", "Sam Lee (student ID 517204) has an IEP meeting Tuesday.",
                        sender=STAFF, to=OTHER_STUDENT)
        errors, _ = await send(gw.port, STAFF, [OTHER_STUDENT, STUDENT], records)
        assert errors == {}
        assert [m.rcpt_tos for m in upstream.messages] == [[OTHER_STUDENT]]
        entries = sorted(gw.store.list_entries(), key=lambda e: e.rules)
        assert [(e.held_recipients, e.rules) for e in entries] == [
            ((STUDENT,), ("P15",)), ((STUDENT,), ("P7",))]
    finally:
        await stop(gw)


async def test_a_held_copy_carries_the_schools_the_directory_gives(config, upstream):
    """The optional `school` column reaches the quarantine: the review console's scope."""
    people = config.parent / "people.csv"
    rows = people.read_text().splitlines()
    schools = {"T1001": "Lincoln Elementary", "482913": "Lincoln Elementary;Roosevelt Middle"}
    people.write_text("\n".join(
        [rows[0] + ",school"] + [row + "," + schools.get(row.split(",")[2], "")
                                 for row in rows[1:]]) + "\n")
    gw = await start(config)
    try:
        content = plain("Field trip", "Bring a lunch.", sender=STAFF, to=STUDENT)
        errors, _ = await send(gw.port, STAFF, [STUDENT, STUDENT_PERSONAL], content)
        assert errors == {}
        [entry] = gw.store.list_entries()
        assert entry.held_recipients == (STUDENT_PERSONAL,)
        assert entry.schools == ("Lincoln Elementary", "Roosevelt Middle")
    finally:
        await stop(gw)
