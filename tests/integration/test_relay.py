"""The relay against real servers on loopback: its MAIL and RCPT commands, how refusals map,
SMTPUTF8, and connections closed (never pooled) after a refused greeting or a
cancellation."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config import UpstreamSettings
from gateway.smtp.client import Relay
from tests.upstream import GreetingServer


def relay_for(port: int) -> Relay:
    return Relay(UpstreamSettings(host="127.0.0.1", port=port, starttls="off", timeout=5),
                 "gw.test")


async def test_first_message_on_a_fresh_connection_carries_size_and_body(upstream) -> None:
    """EHLO happens when the connection opens, so even the first MAIL has SIZE and BODY."""
    relay = relay_for(upstream.port)
    content = "Subject: café\r\n\r\nDéjà vu\r\n".encode()
    try:
        result = await relay.send("a@b.example", ["c@d.example"], content)
    finally:
        await relay.close()
    assert result.delivered and result.accepted == ("c@d.example",)
    [got] = upstream.messages
    assert got.mail_from == "a@b.example" and got.rcpt_tos == ["c@d.example"]
    assert got.mail_options == [f"SIZE={len(content)}", "BODY=8BITMIME"]


async def test_null_sender_and_quoted_local_part_arrive_as_spelled(upstream) -> None:
    relay = relay_for(upstream.port)
    try:
        first = await relay.send("", ['"two words"@d.example'], b"Subject: x\r\n\r\nhi\r\n")
        second = await relay.send("a@b.example", ["c@d.example"], b"Subject: y\r\n\r\nhi\r\n")
    finally:
        await relay.close()
    assert first.delivered and second.delivered
    assert [(m.mail_from, m.rcpt_tos) for m in upstream.messages] == [
        ("<>", ['"two words"@d.example']), ("a@b.example", ["c@d.example"])]


async def test_refusals_map_as_before(upstream) -> None:
    """5xx to MAIL refuses every recipient; 5xx to one RCPT refuses that one; 4xx to a RCPT
    tempfails the whole copy; and the connection stays usable after each."""
    relay = relay_for(upstream.port)
    body = b"Subject: x\r\n\r\nhi\r\n"
    try:
        upstream.behaviour.mail_reply = "550 5.7.1 sender refused"
        all_refused = await relay.send("a@b.example", ["c@d.example", "e@d.example"], body)
        upstream.behaviour.mail_reply = None
        upstream.behaviour.refuse_rcpt = {"c@d.example"}
        partial = await relay.send("a@b.example", ["c@d.example", "e@d.example"], body)
        upstream.behaviour.refuse_rcpt = set()
        upstream.behaviour.tempfail_rcpt = {"e@d.example"}
        tempfail = await relay.send("a@b.example", ["c@d.example", "e@d.example"], body)
        upstream.behaviour.mail_reply = "451 4.3.0 try later"
        mail_tempfail = await relay.send("a@b.example", ["c@d.example"], body)
    finally:
        await relay.close()
    assert not all_refused.delivered and all_refused.temporary is None
    assert all_refused.refused == {"c@d.example": (550, "5.7.1 sender refused"),
                                   "e@d.example": (550, "5.7.1 sender refused")}
    assert partial.accepted == ("e@d.example",) and set(partial.refused) == {"c@d.example"}
    assert partial.refused["c@d.example"][0] == 550
    assert tempfail.temporary is not None and tempfail.temporary[0] == 450
    assert mail_tempfail.temporary == (451, "4.3.0 try later")
    assert [m.rcpt_tos for m in upstream.messages] == [["e@d.example"]]


async def test_non_ascii_address_goes_with_smtputf8(upstream) -> None:
    relay = relay_for(upstream.port)
    try:
        result = await relay.send("a@b.example", ["ü@d.example", "c@d.example"],
                                  b"Subject: x\r\n\r\nhi\r\n")
    finally:
        await relay.close()
    assert result.accepted == ("ü@d.example", "c@d.example")
    assert upstream.messages[0].mail_options[-1] == "SMTPUTF8"


async def test_refused_greeting_is_a_tempfail_and_the_connection_is_closed() -> None:
    server = await GreetingServer("550 5.7.1 go away").start()
    relay = relay_for(server.port)
    try:
        result = await relay.send("a@b.example", ["c@d.example"], b"Subject: x\r\n\r\nhi\r\n")
        await asyncio.wait_for(server.closed.wait(), 5)
    finally:
        await relay.close()
        await server.stop()
    assert result.temporary is not None and result.temporary[0] == 451
    assert (result.failure, result.cause) == ("refused", "upstream replied 550 5.7.1 go away")
    assert not result.accepted and server.open == 0


async def test_cancelled_during_the_greeting_closes_the_connection() -> None:
    """The processing deadline or the readiness probe's timeout cancels a relay mid-EHLO."""
    server = await GreetingServer(None).start()
    relay = relay_for(server.port)
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(relay.send("a@b.example", ["c@d.example"], b"x\r\n"), 0.3)
        await asyncio.wait_for(server.closed.wait(), 5)
    finally:
        await relay.close()
        await server.stop()
    assert server.open == 0


async def test_a_helo_name_the_upstream_cannot_be_sent_is_a_tempfail(upstream) -> None:
    relay = Relay(UpstreamSettings(host="127.0.0.1", port=upstream.port, starttls="off",
                                   timeout=5, helo="gw.écoles.example"), "gw.test")
    try:
        result = await relay.send("a@b.example", ["c@d.example"], b"x\r\n")
    finally:
        await relay.close()
    assert result.temporary is not None and result.temporary[0] == 451
    assert not upstream.messages


async def test_cancelled_mid_transaction_drops_the_connection_instead_of_pooling_it() -> None:
    """The processing deadline cancels a relay waiting for a RCPT reply: that connection is
    half-way through a transaction and must be closed, never reused for the next message."""
    server = await GreetingServer("250 ok", silent_on=b"RCPT").start()
    relay = relay_for(server.port)
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(relay.send("a@b.example", ["c@d.example"], b"x\r\n"), 0.5)
        await asyncio.wait_for(server.closed.wait(), 5)
        assert server.open == 0 and relay._idle == []
    finally:
        await relay.close()
        await server.stop()
