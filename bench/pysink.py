"""A discard SMTP sink in plain asyncio: the fallback when Postfix's smtp-sink is missing.

Why not `gateway sink`: that one writes every message to disk, which would make the sink the
bottleneck. This one answers like smtp-sink (accept everything, keep nothing), reading DATA in
blocks and looking only for the CRLF.CRLF terminator. Usage: python bench/pysink.py PORT
"""

from __future__ import annotations

import asyncio
import sys

EHLO = (b"250-bench-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 0\r\n"
        b"250 SMTPUTF8\r\n")


class SinkProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        transport.write(b"220 bench-sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    self.buffer = self.buffer[-4:]
                    return
                self.buffer = self.buffer[end + 5:]
                self.in_data = False
                self.transport.write(b"250 2.0.0 Ok: queued\r\n")
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                return
            self.buffer = rest
            self.command(line[:4].upper())

    def command(self, verb: bytes) -> None:
        assert self.transport is not None
        if verb == b"EHLO":
            self.transport.write(EHLO)
        elif verb == b"DATA":
            self.in_data = True
            self.buffer = b"\r\n" + self.buffer  # the terminator may follow immediately
            self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"QUIT":
            self.transport.write(b"221 2.0.0 Bye\r\n")
            self.transport.close()
        else:
            self.transport.write(b"250 2.0.0 Ok\r\n")


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(SinkProtocol, "127.0.0.1", port,
                                                            backlog=2048)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.run(main(int(sys.argv[1])))
    except ImportError:
        asyncio.run(main(int(sys.argv[1])))
