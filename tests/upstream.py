"""Fake upstream mail servers on loopback, each told how to misbehave.

`Upstream`: a real aiosmtpd server that can refuse, tempfail, stall, hold DATA open, drop the
connection mid-DATA, stop announcing PIPELINING, or crash and come back on the same port.
`ScriptedUpstream`: a hand-written server that answers a pipelined group only once it holds all
of it, and controls exactly how its replies arrive. `GreetingServer`: a raw server that greets
and then answers every command the same way (or never).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session


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
        self.data_started = asyncio.Event()  # set when a DATA command arrives
        self.gate = asyncio.Event()  # DATA is answered only while this is set
        self.gate.set()

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
        self.data_started.set()
        await self.gate.wait()
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
        self.sessions: list[SMTP] = []
        self._port = 0
        self.protocol: type[SMTP] = SMTP

    def accept_long_lines(self, limit: int = 1 << 16) -> None:
        """Accept body lines up to `limit` octets, as Postfix does (aiosmtpd: 1,000)."""
        self.protocol = type("LongLineSMTP", (SMTP,), {"line_length_limit": limit})

    def _session(self) -> SMTP:
        smtp = self.protocol(self.handler, enable_SMTPUTF8=True, decode_data=False,
                             ident="test-upstream")
        self.sessions.append(smtp)
        return smtp

    async def start(self) -> Upstream:
        """Listen on a free port, or on the same port again after `stop` or `crash`."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._session, host="127.0.0.1",
                                               port=self._port)
        self._port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def port(self) -> int:
        assert self._port, "the upstream was never started"
        return self._port

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def gate(self) -> asyncio.Event:
        """Clear it to hold every DATA open (the client waits for the final reply)."""
        return self.handler.gate

    @property
    def data_started(self) -> asyncio.Event:
        return self.handler.data_started

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def crash(self) -> None:
        """Stop listening and cut every open connection, as a crashed mail server would."""
        assert self.server is not None
        self.server.close()
        for smtp in self.sessions:
            if smtp.transport is not None:
                smtp.transport.abort()
        self.sessions.clear()
        await self.server.wait_closed()
        self.server = None


class GreetingServer:
    """A raw upstream that greets with 220, then answers every command with `reply` (or never,
    when `reply` is None; `silent_on`: never to commands starting with it), and counts the
    connections its clients still hold open."""

    def __init__(self, reply: str | None, silent_on: bytes | None = None):
        self.reply = reply
        self.silent_on = silent_on
        self.open = 0
        self.closed = asyncio.Event()

    async def start(self) -> GreetingServer:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        writer.write(b"220 test ESMTP\r\n")
        try:
            while line := await reader.readline():
                silent = self.silent_on is not None and line.upper().startswith(self.silent_on)
                if self.reply is not None and line.strip() and not silent:
                    writer.write(self.reply.encode() + b"\r\n")
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            self.closed.set()
            writer.close()

    async def stop(self) -> None:
        self.server.close()


# --- a scripted upstream that announces PIPELINING and controls how its replies arrive -------
#
# It answers nothing for a transaction until it holds the whole group (MAIL, RCPTs, DATA), so a
# client that does not pipeline waits in vain, and it records how each group arrived.

@dataclasses.dataclass
class Script:
    """How the scripted server answers one pipelined group of len(commands) lines."""

    answer: Callable[[list[bytes]], list[bytes]] = lambda lines: [
        b"354 go\r\n" if line == b"DATA" else b"250 ok\r\n" for line in lines]
    chunks: Callable[[bytes], list[bytes]] = lambda data: [data]  # how the replies are cut
    group_size: int = 3  # lines to wait for before answering anything
    extra: bytes = b""  # sent with the group's replies (a server answering too much)
    drop_on_transaction: int | None = None  # close instead of answering this transaction
    close_after_replies: bool = False  # close right after the group's replies ("421, bye")
    drop_after_data_on: int | None = None  # take this transaction's message, then close
    after_queued: bytes = b""  # sent in the same write as "250 queued"


class ScriptedUpstream:
    def __init__(self, script: Script):
        self.script = script
        self.reads: list[bytes] = []  # what each transaction's command group arrived as
        self.messages: list[bytes] = []
        self.transactions = 0
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> ScriptedUpstream:
        self.server = await asyncio.start_server(self.session, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"220 scripted ESMTP\r\n")
        try:
            while True:
                line = (await reader.readline()).rstrip(b"\r\n")
                if not line:
                    return
                verb = line.split(b" ", 1)[0].upper()
                if verb == b"EHLO":
                    writer.write(b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb in (b"RSET", b"NOOP"):
                    writer.write(b"250 ok\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    return
                elif verb == b"MAIL":
                    if not await self.transaction(line, reader, writer):
                        return
                else:
                    writer.write(b"500 unexpected\r\n")
                await writer.drain()
        finally:
            writer.close()

    async def transaction(self, first: bytes, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> bool:
        script = self.script
        self.transactions += 1
        lines = [first]
        self.reads.append(first + b"\r\n" + bytes(reader._buffer))  # type: ignore[attr-defined]
        while len(lines) < script.group_size:  # nothing is answered before the whole group
            lines.append((await reader.readline()).rstrip(b"\r\n"))
        if script.drop_on_transaction == self.transactions:
            writer.transport.abort()
            return False
        replies = script.answer(lines)
        for chunk in script.chunks(b"".join(replies) + script.extra):
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.01)
        if script.close_after_replies:
            writer.transport.abort()
            return False
        if replies[-1].startswith(b"354"):
            self.messages.append(await reader.readuntil(b"\r\n.\r\n"))
            if script.drop_after_data_on == self.transactions:
                writer.transport.abort()
                return False
            writer.write(b"250 queued\r\n" + script.after_queued)
        return True


async def scripted(script: Script) -> ScriptedUpstream:
    return await ScriptedUpstream(script).start()
