"""Replies to a pipelined command group written together: aiosmtpd's SMTP with a batching push.

Why: the gateway announces PIPELINING (`server.Handler.handle_EHLO`), so a sending MTA puts MAIL,
its RCPTs and DATA in one packet. aiosmtpd answers them one by one, each reply its own write,
and each write wakes the client for nothing until the last. RFC 2920 (3.2) has a server keep
the replies to a group and send them together; Postfix's smtpd flushes its replies only when
its input buffer is empty. Here a `250` reply is held back while the client's next command
already waits, complete, in our buffer, and goes out in the same write as the next reply that
is not held (a 354, a refusal, or the last 250 of the group). Order is unchanged, and a reply
is never held once nothing more is buffered, so no client waits for one. At most HOLD_LIMIT
bytes are held: a client streaming commands without reading its replies still meets the
transport's back-pressure, as before, instead of growing our buffer.
"""

from __future__ import annotations

from typing import AnyStr

from aiosmtpd.smtp import SMTP


class BatchedRepliesSMTP(SMTP):
    """aiosmtpd's SMTP whose 250 replies wait for the rest of a pipelined group."""

    HOLD_LIMIT = 4096  # bytes of replies; a real group's are a few hundred
    _held: bytes = b""  # replies not written yet (a class default: no __init__ needed)

    async def push(self, status: AnyStr) -> None:
        reply = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii") \
            if isinstance(status, str) else bytes(status)
        if (reply.startswith(b"250 ") and len(self._held) < self.HOLD_LIMIT
                and self._next_command_buffered()):
            self._held += reply + b"\r\n"
            return
        held, self._held = self._held, b""
        self._writer.write(held + reply + b"\r\n")
        await self._writer.drain()

    def _next_command_buffered(self) -> bool:
        # StreamReader keeps what arrived and was not read yet in `_buffer` (aiosmtpd itself
        # relies on it when it starts TLS).
        buffered = getattr(self._reader, "_buffer", b"")
        return b"\n" in buffered
