"""The least a Python asyncio SMTP hop can cost here: the bench's floor for added latency.

A relay with nothing but the protocol: it answers EHLO/MAIL/RCPT/DATA, reads the message up to
CRLF.CRLF and passes it, still dot-stuffed, to the sink over one pipelined connection per
session (MAIL, RCPT and DATA in one write, then the message). No checks, limits, policy,
inspection, logging or metrics, and no aiosmtpd or aiosmtplib. Measured in the same rounds as
the gateway, it shows how much of the gateway's added latency any Python asyncio process in
the path would cost on this machine, and how much is the gateway's own work. Bench use only;
it is not a mail server. Usage: python bench/floor_relay.py PORT SINK_PORT
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import Client, SmtpError

try:
    import uvloop
except ImportError:  # pragma: no cover - the daemon's own dependency
    uvloop = None

EHLO = b"250-floor-relay\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
TERMINATOR = b"\r\n.\r\n"


class Upstream(Client):
    """The bench's client connection to the sink, used by one session at a time."""

    async def relay(self, mail: bytes, rcpts: list[bytes], stuffed: bytes) -> bytes:
        """MAIL, the RCPTs and DATA in one write, then the message; the reply for the client."""
        self.writer.write(b"".join([b"MAIL FROM:" + mail + b"\r\n",
                                    *(b"RCPT TO:" + r + b"\r\n" for r in rcpts), b"DATA\r\n"]))
        for code in [b"250"] * (len(rcpts) + 1) + [b"354"]:
            await self.reply(code)
        self.writer.write(stuffed)
        await self.reply(b"250")
        return b"250 2.0.0 Ok: relayed\r\n"


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  sink_port: int) -> None:
    upstream: Upstream | None = None
    mail, rcpts = b"", []
    writer.write(b"220 floor-relay ESMTP\r\n")
    try:
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(EHLO)
            elif verb == b"MAIL":
                mail, rcpts = line[10:].strip(), []
                writer.write(b"250 2.1.0 Ok\r\n")
            elif verb == b"RCPT":
                rcpts.append(line[8:].strip())
                writer.write(b"250 2.1.5 Ok\r\n")
            elif verb == b"DATA":
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                data = await reader.readuntil(TERMINATOR)
                upstream = upstream or await Upstream.open(sink_port)
                writer.write(await upstream.relay(mail, rcpts, data))
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                break
            else:
                writer.write(b"250 2.0.0 Ok\r\n")
    except (ConnectionError, SmtpError, asyncio.IncompleteReadError):
        pass  # bench use: a refusal or a lost connection ends the session
    finally:
        writer.close()
        if upstream is not None:
            upstream.writer.close()


async def serve(port: int, sink_port: int) -> None:
    server = await asyncio.start_server(lambda r, w: session(r, w, sink_port), "127.0.0.1",
                                        port, limit=64 << 20)
    async with server:
        await server.serve_forever()


def main() -> int:
    port, sink_port = int(sys.argv[1]), int(sys.argv[2])
    if uvloop is not None:  # as the daemon runs
        uvloop.run(serve(port, sink_port))
    else:
        asyncio.run(serve(port, sink_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
