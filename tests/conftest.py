"""Shared fixtures: a real aiosmtpd upstream that can be told to misbehave, and settings files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.config import Settings, load_settings


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    mail_options: list[str] = field(default_factory=list)


@dataclass
class UpstreamBehaviour:
    """What the fake upstream does; tests flip these between messages."""

    mail_reply: str | None = None  # e.g. "550 5.7.1 sender refused": answer MAIL with it
    refuse_rcpt: set[str] = field(default_factory=set)  # 550 at RCPT
    tempfail_rcpt: set[str] = field(default_factory=set)  # 450 at RCPT
    data_reply: str | None = None  # e.g. "451 4.3.0 try later" or "554 5.7.1 no"
    hang_data: float = 0.0  # seconds to sleep before answering DATA
    drop_in_data: bool = False  # close the connection instead of answering DATA
    pipelining: bool = True  # announce PIPELINING, as Postfix, Exchange and Gmail do


class UpstreamHandler:
    def __init__(self, behaviour: UpstreamBehaviour):
        self.behaviour = behaviour
        self.messages: list[Received] = []
        self.arrived = asyncio.Event()

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.behaviour.pipelining:
            responses.insert(-1, "250-PIPELINING")  # before the last line ("250 HELP")
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if self.behaviour.mail_reply:
            return self.behaviour.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.behaviour.refuse_rcpt:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.behaviour.tempfail_rcpt:
            return f"450 4.2.1 <{address}>: Mailbox busy"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        b = self.behaviour
        if b.hang_data:
            await asyncio.sleep(b.hang_data)
        if b.drop_in_data:
            assert server.transport is not None
            server.transport.abort()
            return "451 never sent"
        if b.data_reply:
            return b.data_reply
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      envelope.original_content or b"",
                                      list(envelope.mail_options)))
        self.arrived.set()
        return "250 2.0.0 Ok: queued"


class Upstream:
    """A real SMTP server on a free loopback port."""

    def __init__(self) -> None:
        self.behaviour = UpstreamBehaviour()
        self.handler = UpstreamHandler(self.behaviour)
        self.server: asyncio.Server | None = None

    async def start(self) -> Upstream:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(self.handler, enable_SMTPUTF8=True, decode_data=False,
                         ident="test-upstream"), host="127.0.0.1", port=0)
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = await Upstream().start()
    yield up
    await up.stop()


def write_settings(tmp_path: Path, upstream_port: int, extra: str = "",
                   listen_port: int = 0, *, smtp: str = "", upstream_timeout: float = 5,
                   trusted: str = "127.0.0.0/8") -> Settings:
    """A gateway.yaml in tmp_path pointing at the test upstream; returns loaded Settings."""
    (tmp_path / "var").mkdir(exist_ok=True)
    text = f"""
listen: {{host: 127.0.0.1, port: {listen_port}}}
upstream: {{host: 127.0.0.1, port: {upstream_port}, timeout: {upstream_timeout}}}
trusted_networks: [{trusted}]
district:
  staff_domains: [staff.example.org]
  student_domains: [students.example.org]
quarantine: {{url: "sqlite:///var/quarantine.db"}}
postmaster: postmaster@staff.example.org
smtp: {{hostname: gw.test, processing_deadline: 20, {smtp}}}
{extra}
"""
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return load_settings(path)


@pytest.fixture
def settings_factory(tmp_path: Path) -> Any:
    def make(upstream_port: int, extra: str = "") -> Settings:
        return write_settings(tmp_path, upstream_port, extra)
    return make


@pytest.fixture
async def gateways() -> AsyncIterator[Any]:
    """Start gateways (tests.core_helpers.start_gateway) and drain them all at teardown."""
    from tests.core_helpers import start_gateway

    started = []

    async def start(settings: Settings, policy: Any = None, store: Any = None,
                    inspector: Any = None) -> Any:
        gw = await start_gateway(settings, policy, store, inspector)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        await gw.drain(0)
