"""Holding over SMTP with the real SQLite quarantine: split delivery, retries, store faults."""

from __future__ import annotations

import sqlite3

import aiosmtplib
import pytest

from gateway.actions.release import release_entry
from gateway.model import Action
from gateway.quarantine import open_store
from gateway.quarantine.base import Actor
from tests.factories import ExplodingInspector, ScriptedPolicy, make_message, write_settings
from tests.harness import send

SENDER = "teacher@staff.example.org"
STUDENT = "student@students.example.org"
PERSONAL = "student.home@gmail.example"


@pytest.fixture
def settings(tmp_path, upstream):
    return write_settings(tmp_path, upstream.port)


@pytest.fixture
def store(settings):
    s = open_store(settings)
    yield s
    s.close()


async def test_split_message_relays_one_copy_and_holds_the_other(settings, store, upstream,
                                                                  gateways):
    policy = ScriptedPolicy({PERSONAL: Action.HOLD})
    gw = await gateways(settings, policy, store)
    errors, reply = await send(gw.port, SENDER, [STUDENT, PERSONAL], make_message())
    [entry] = store.list_entries()
    # What Postfix logs for both recipients: the hold is visible, with the id to review.
    assert errors == {} and reply.startswith("2.7.0 Ok: queued as ")
    assert reply.endswith(f", 1 of 2 held for review, id={entry.id}")
    assert [m.rcpt_tos for m in upstream.messages] == [[STUDENT]]
    assert entry.held_recipients == (PERSONAL,)
    assert entry.rules == ("T1",)
    assert store.content(entry.id) == make_message()  # the exact bytes the client sent


async def test_retry_after_tempfail_is_not_held_twice(settings, store, upstream, gateways):
    policy = ScriptedPolicy({PERSONAL: Action.HOLD})
    gw = await gateways(settings, policy, store)
    message = make_message()
    upstream.behaviour.data_reply = "451 4.3.0 busy"
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await send(gw.port, SENDER, [STUDENT, PERSONAL], message)
    assert info.value.code == 451
    assert len(store.list_entries()) == 1  # held before relaying, kept for the retry
    upstream.behaviour.data_reply = None
    errors, _ = await send(gw.port, SENDER, [STUDENT, PERSONAL], message)
    assert errors == {}
    assert len(store.list_entries()) == 1
    assert [m.rcpt_tos for m in upstream.messages] == [[STUDENT]]


async def test_inspection_crash_holds_instead_of_relaying(settings, store, upstream, gateways):
    gw = await gateways(settings, store=store, inspector=ExplodingInspector())
    errors, _ = await send(gw.port, SENDER, [STUDENT], make_message())
    assert errors == {}
    assert upstream.messages == []
    [entry] = store.list_entries()
    assert entry.rules == ("internal-error",)
    assert "RuntimeError" in entry.reasons[0]["reason"]


class FullDiskStore:
    """The real store, except that writing fails the way SQLite reports a full disk."""

    def __init__(self, inner):
        self.inner = inner

    def hold(self, request):
        raise sqlite3.OperationalError("database or disk is full")

    def __getattr__(self, name):
        return getattr(self.inner, name)


async def test_store_failure_answers_451_and_relays_nothing(settings, store, upstream, gateways):
    policy = ScriptedPolicy({PERSONAL: Action.HOLD})
    gw = await gateways(settings, policy, FullDiskStore(store))
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await send(gw.port, SENDER, [STUDENT, PERSONAL], make_message())
    assert info.value.code == 451
    assert upstream.messages == []


async def test_annotated_copy_is_relayed_separately(settings, store, upstream, gateways):
    policy = ScriptedPolicy({STUDENT: Action.ANNOTATE})
    other = "colleague@staff.example.org"
    gw = await gateways(settings, policy, store)
    errors, _ = await send(gw.port, SENDER, [STUDENT, other], make_message())
    assert errors == {}
    copies = {tuple(m.rcpt_tos): m.content for m in upstream.messages}
    assert set(copies) == {(STUDENT,), (other,)}
    assert b"X-Test-Annotated: yes" in copies[(STUDENT,)]
    assert b"X-Test-Annotated" not in copies[(other,)]


async def test_a_bounce_the_upstream_refuses_is_held_and_released_to_the_sender(
        settings, store, upstream, gateways):
    """One recipient refused by the upstream, the other delivered: 250 and a bounce. The
    upstream will not take the bounce either, so it is held (rule DSN); a release sends it."""
    gone = "gone@students.example.org"
    upstream.behaviour.refuse_rcpt = {gone}
    upstream.behaviour.tempfail_rcpt = {SENDER}  # the bounce goes to the sender
    gw = await gateways(settings, None, store)
    errors, reply = await send(gw.port, SENDER, [STUDENT, gone], make_message())
    assert errors == {} and reply.startswith("2.7.0")
    assert "1 of 2 refused, bounce to sender" in reply
    assert [m.rcpt_tos for m in upstream.messages] == [[STUDENT]]
    [entry] = store.list_entries()  # held before the 250 was sent
    assert entry.rules == ("DSN",) and entry.mail_from == ""
    assert entry.held_recipients == (SENDER,)
    bounce = store.content(entry.id)
    assert bounce is not None and f"Final-Recipient: rfc822; {gone}".encode() in bounce

    upstream.behaviour.tempfail_rcpt = set()
    outcome = await release_entry(store, entry.id, Actor("reviewer", "test"), "server fixed",
                                  gw.relay.send, hostname="gw.test", lease_seconds=60)
    assert outcome.complete
    released = upstream.messages[-1]
    assert released.mail_from in ("", "<>") and released.rcpt_tos == [SENDER]
    assert released.content.endswith(bounce)


async def test_a_bounce_the_upstream_takes_is_not_held(settings, store, upstream, gateways):
    gone = "gone@students.example.org"
    upstream.behaviour.refuse_rcpt = {gone}
    gw = await gateways(settings, None, store)
    errors, _ = await send(gw.port, SENDER, [STUDENT, gone], make_message())
    assert errors == {}
    assert [m.rcpt_tos for m in upstream.messages] == [[STUDENT], [SENDER]]  # already sent
    assert store.list_entries() == []
