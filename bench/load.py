"""Load generators: Postfix's smtp-source, a Python fallback, and a one-session latency probe.

A run sends `count` messages over `sessions` concurrent connections (each connection sends
several messages, like smtp-source -d) and reports messages per second from start to exit.
A run that got any non-2xx reply or failed to finish counts as failed: a figure from a
tempfailing gateway would only measure how fast it says no.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from bench.messages import RECIPIENT, SENDER, wire_bytes


@dataclass(frozen=True, slots=True)
class Run:
    messages: int
    seconds: float
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 and not self.error else 0.0


def run_load(tools: tuple[str, str] | None, port: int, files: list[Path], sessions: int,
             count: int, timeout: float = 180.0) -> Run:
    """Send `count` messages, the files spread evenly over the sessions, and time it."""
    if tools:
        return _smtp_source(tools[0], port, files, sessions, count, timeout)
    return asyncio.run(_python_load(port, files, sessions, count, timeout))


def _smtp_source(binary: str, port: int, files: list[Path], sessions: int, count: int,
                 timeout: float) -> Run:
    """One smtp-source per message file, sessions and messages shared out between them."""
    shares = _split(sessions, len(files))
    jobs = [(f, s, max(s, count * s // sessions)) for f, s in zip(files, shares, strict=True)
            if s]
    started = time.perf_counter()
    procs = [subprocess.Popen([binary, "-d", "-s", str(s), "-m", str(m), "-F", str(f),
                               "-f", SENDER, "-t", RECIPIENT, "-M", "bench.example",
                               f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for f, s, m in jobs]
    error = None
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=max(1.0, timeout - (time.perf_counter()
                                                                  - started)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            error = "timed out"
            continue
        if proc.returncode != 0:
            error = (err.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
    return Run(sum(m for _, _, m in jobs), time.perf_counter() - started, error)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def _python_load(port: int, files: list[Path], sessions: int, count: int,
                       timeout: float) -> Run:
    payloads = [wire_bytes(f) for f in files]
    remaining = [count]

    async def session(index: int) -> None:
        client = await Client.open(port)
        try:
            payload = payloads[index % len(payloads)]
            while remaining[0] > 0:
                remaining[0] -= 1
                await client.send(payload)
        finally:
            await client.quit()

    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(session(i) for i in range(sessions))),
                               timeout)
    except (OSError, TimeoutError, SmtpError) as exc:
        return Run(count, time.perf_counter() - started, str(exc) or type(exc).__name__)
    return Run(count, time.perf_counter() - started)


class SmtpError(Exception):
    pass


class Client:
    """A minimal asyncio SMTP client: no pipelining, one message at a time, like smtp-source."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Self:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        client = cls(reader, writer)
        await client.reply(b"220")
        await client.command(b"EHLO bench.example\r\n", b"250")
        return client

    async def reply(self, expect: bytes) -> None:
        while True:
            line = await self.reader.readline()
            if not line:
                raise SmtpError("connection closed")
            if line[3:4] != b"-":
                break
        if not line.startswith(expect):
            raise SmtpError(line.decode(errors="replace").strip()[:80])

    async def command(self, line: bytes, expect: bytes) -> None:
        self.writer.write(line)
        await self.reply(expect)

    async def send(self, payload: bytes) -> None:
        await self.command(f"MAIL FROM:<{SENDER}>\r\n".encode(), b"250")
        await self.command(f"RCPT TO:<{RECIPIENT}>\r\n".encode(), b"250")
        await self.command(b"DATA\r\n", b"354")
        await self.command(payload, b"250")

    async def quit(self) -> None:
        try:
            self.writer.write(b"QUIT\r\n")
            self.writer.close()
            await self.writer.wait_closed()
        except OSError:
            pass


def latencies(port: int, files: list[Path], count: int,
              pipelining: bool = True) -> list[float]:
    """Seconds per transaction (MAIL to the final 250) over one session, files in turn.

    With `pipelining` and a server that announces PIPELINING, MAIL, RCPT and DATA go in one
    write, as a sending Postfix, Exchange or Gmail does; otherwise one command at a time, as
    smtp-source does (it cannot pipeline).
    """
    payloads = [wire_bytes(f) for f in files]
    out: list[float] = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = sock.makefile("rb")
        _expect(stream, b"220")
        sock.sendall(b"EHLO bench.example\r\n")
        ehlo = _expect(stream, b"250")
        envelope = [(f"MAIL FROM:<{SENDER}>\r\n".encode(), b"250"),
                    (f"RCPT TO:<{RECIPIENT}>\r\n".encode(), b"250"), (b"DATA\r\n", b"354")]
        if pipelining and b"PIPELINING" in ehlo.upper():
            envelope = [(b"".join(line for line, _ in envelope), b"")] + [
                (b"", code) for _, code in envelope]
        for i in range(count):
            started = time.perf_counter()
            for line, code in (*envelope, (payloads[i % len(payloads)], b"250")):
                if line:
                    sock.sendall(line)
                if code:
                    _expect(stream, code)
            out.append(time.perf_counter() - started)
        sock.sendall(b"QUIT\r\n")
    return out


def _expect(stream: object, code: bytes) -> bytes:
    """Read one reply; SmtpError unless it starts with `code`. Returns all its lines."""
    lines = []
    while True:
        line = stream.readline()  # type: ignore[attr-defined]
        if not line:
            raise SmtpError("connection closed")
        lines.append(line)
        if line[3:4] != b"-":
            break
    if not line.startswith(code):
        raise SmtpError(line.decode(errors="replace").strip()[:80])
    return b"".join(lines)
