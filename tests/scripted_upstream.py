"""A scripted SMTP upstream that announces PIPELINING and controls how its replies arrive.

It answers nothing for a transaction until it holds the whole group (MAIL, RCPTs, DATA), so a
client that does not pipeline waits in vain, and it records how each group arrived.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable


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
