"""SMTP command pipelining (RFC 2920) for the relay, on top of aiosmtplib's connection.

Why: on a LAN or loopback hop a command's round trip (the upstream woken to answer, then us
woken to read it) costs more than the command itself. Sending MAIL, every RCPT and DATA as one
group, as Postfix's SMTP client does whenever the server announces PIPELINING, saves two of a
message's four round trips: the relay step to smtp-sink on loopback went from 450 to 355 us in
a quiet phase of the development VM and from 990 to 643 us in a slow one, more with several
recipients (bench/bench_relay.py, docs/benchmarks.md "Fourth round"). Over a LAN each round
trip saved is worth more.

aiosmtplib reads one reply per command written, and of replies that arrive together it parses
only the first (the rest wait for more data that never comes) or drops them. So its protocol
is given one more ability: while a group is in flight, every complete reply is kept, in order.
Outside a group the protocol is exactly aiosmtplib's (data nobody asked for is still dropped,
and STARTTLS still discards what arrived with its 220). It reuses aiosmtplib's reply parser
and buffer, so tests/integration/test_relay_pipelining.py exercises it against the installed
version, with replies arriving together, one by one and split mid-line.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import aiosmtplib
from aiosmtplib.protocol import COMMAND_INJECTION_REGEX, MAX_RESPONSE_LENGTH, SMTPProtocol


class GroupCut(aiosmtplib.SMTPServerDisconnected):
    """The connection ended before every reply of a group came; `replies` are those that did
    (a server may answer 421 and close at once, RFC 5321 3.8: that reply must not be lost)."""

    def __init__(self, message: str, replies: list[aiosmtplib.SMTPResponse]):
        super().__init__(message)
        self.replies = replies


class PipeliningProtocol(SMTPProtocol):
    """aiosmtplib's protocol, plus `send_pipelined()`: several commands, one write, every reply."""

    # None outside a group. A class attribute, so that a protocol aiosmtplib created is
    # upgraded by changing its class (PipeliningSMTP), with no state of its own to set up.
    _group: deque[aiosmtplib.SMTPResponse | Exception] | None = None

    async def send_pipelined(self, commands: Sequence[bytes],
                       timeout: float | None) -> list[aiosmtplib.SMTPResponse]:
        """Write `commands` (without CRLF) at once; return their replies in order.

        Raises as aiosmtplib's commands do: SMTPServerDisconnected, SMTPReadTimeoutError,
        SMTPResponseException for a malformed reply; ValueError (nothing sent) for a command
        with a control character in it.
        """
        # aiosmtplib's own check on a command's arguments: a control character could end the
        # command early and smuggle another one in.
        if any(COMMAND_INJECTION_REGEX.search(command) for command in commands):
            raise ValueError("Command arg contains a prohibited control character")
        if self._command_lock is None:
            raise aiosmtplib.SMTPServerDisconnected("Server not connected")
        async with self._command_lock:
            # Whatever an earlier exchange left behind (aiosmtplib keeps bytes that came after
            # the reply it read) would shift every reply of this group by one.
            del self._buffer[:]
            group = self._group = deque()
            replies: list[aiosmtplib.SMTPResponse] = []
            try:
                self._response_pending = True
                self.write(b"".join(command + b"\r\n" for command in commands))
                for _command in commands:
                    # Replies that came with an earlier one are queued; the waiter holds a
                    # reply only while the queue is empty (see _deliver), so order is kept.
                    item = group.popleft() if group else await self.read_response(timeout)
                    if isinstance(item, Exception):
                        raise item
                    replies.append(item)
                return replies
            except aiosmtplib.SMTPServerDisconnected as exc:
                raise GroupCut(str(exc), replies) from exc
            finally:
                self._group = None
                self._end_group()

    def data_received(self, data: bytes) -> None:
        group = self._group
        if group is None:
            super().data_received(data)
            return
        if self._response_waiter is None:  # connection already lost
            return
        buffer = self._buffer
        buffer.extend(data)
        while True:
            try:
                response = self._read_response_from_buffer()
            except Exception as exc:  # a malformed reply: the rest cannot be trusted
                del buffer[:]
                self._deliver(group, exc)
                return
            if response is None:  # nothing more, or part of a reply: wait for the rest
                break
            self._deliver(group, response)
        # aiosmtplib's bound, on what is left unparsed (the start of a reply still coming): a
        # group of many recipients may bring more than that in complete replies at once.
        if len(buffer) > MAX_RESPONSE_LENGTH:
            del buffer[:]
            self._deliver(group, aiosmtplib.SMTPResponseException(
                aiosmtplib.SMTPStatus.invalid_response.value, "Response too long"))

    def _deliver(self, group: deque[aiosmtplib.SMTPResponse | Exception],
                 item: aiosmtplib.SMTPResponse | Exception) -> None:
        waiter = self._response_waiter
        if not group and waiter is not None and not waiter.done():
            if isinstance(item, Exception):
                waiter.set_exception(item)
                waiter.exception()  # retrieved: nobody may await it (as aiosmtplib does)
            else:
                waiter.set_result(item)
        else:
            group.append(item)

    def _end_group(self) -> None:
        """Forget what came beyond the group's replies (a server answering more than it was
        asked): queued replies go with the group; half a reply left in the buffer would be
        glued to the front of the next command's reply."""
        del self._buffer[:]
        self._response_pending = False


class PipeliningSMTP(aiosmtplib.SMTP):
    """aiosmtplib's client whose connections can pipeline (`protocol.send_pipelined`)."""

    protocol: PipeliningProtocol | None  # type: ignore[assignment]

    async def _create_connection(self, timeout: float | None) -> aiosmtplib.SMTPResponse:
        response = await super()._create_connection(timeout)
        if type(self.protocol) is SMTPProtocol:
            # The protocol aiosmtplib just made, given pipelining: the subclass adds a method
            # and a class attribute and no state, so the object needs nothing else. Handing
            # it to the transport again matters: uvloop keeps the protocol's bound
            # data_received from when it was first set.
            self.protocol.__class__ = PipeliningProtocol
            if self.transport is not None:
                self.transport.set_protocol(self.protocol)
        return response

    @property
    def can_pipeline(self) -> bool:
        return isinstance(self.protocol, PipeliningProtocol) and \
            self.supports_extension("pipelining")
