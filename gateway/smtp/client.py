"""Relay a copy to the upstream mail server over a pool of reused SMTP connections.

Why a pool: opening a connection (and EHLO, maybe STARTTLS) costs more than a small message's
whole transaction, so idle connections are kept and reused (Postfix's connection cache does the
same). A reused connection may have been closed by the upstream meanwhile; a failure *before*
any recipient was accepted on a reused connection (before the message was sent, when
pipelining) is retried once on a fresh one, which can never deliver twice.

When the upstream announces PIPELINING (RFC 2920), MAIL, every RCPT and DATA go out in one
write and their replies are judged together, as Postfix's SMTP client does: two round trips
fewer per message (`gateway.smtp.pipelining`; `upstream.pipelining: false` turns it off).

`send` never raises for network or SMTP errors: the caller gets a RelayResult and folds it
into one reply for the client (no 250 unless the upstream accepted).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field

import aiosmtplib
import structlog
from aiosmtplib.email import quote_address

from gateway import metrics
from gateway.config import UpstreamSettings
from gateway.smtp.pipelining import PipeliningSMTP
from gateway.smtp.wire import data_payload

log = structlog.get_logger("gateway.relay")

Reply = tuple[int, str]
NEEDS_SMTPUTF8 = (553, "5.6.7 The upstream does not accept non-ASCII addresses (no SMTPUTF8)")
# A dot-atom address: what aiosmtplib's quote_address (email.utils.parseaddr, ~60 us) returns
# unchanged. Envelope addresses are almost always this shape; anything else goes through it.
_DOT_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_PLAIN_ADDRESS = re.compile(rf"{_DOT_ATOM}@{_DOT_ATOM}")


@dataclass(frozen=True, slots=True)
class RelayResult:
    accepted: tuple[str, ...] = ()
    refused: dict[str, Reply] = field(default_factory=dict)  # permanent (5xx) per recipient
    temporary: Reply | None = None  # the whole copy must be retried later
    reply: str = ""  # upstream's final reply, for the log
    # Why a copy was deferred, in the words of whatever failed: the socket error, the TLS
    # error, the timeout, or the upstream's own reply. Never a code the upstream did not send.
    cause: str = ""
    failure: str = ""  # timeout | refused | connect | dropped | protocol | tempfail

    @property
    def delivered(self) -> bool:
        return self.temporary is None and bool(self.accepted)


class _Retry(Exception):
    """A reused connection turned out to be dead before anything was accepted."""


@dataclass(slots=True)
class _Idle:
    smtp: aiosmtplib.SMTP
    since: float


class Relay:
    """Sends copies upstream; safe to share between all sessions of one process."""

    def __init__(self, settings: UpstreamSettings, helo_hostname: str):
        self.settings = settings
        self.helo = settings.helo or helo_hostname
        self._idle: list[_Idle] = []
        self._closed = False

    async def send(self, mail_from: str, rcpts: tuple[str, ...] | list[str],
                   content: bytes, *, crlf_only: bool = False) -> RelayResult:
        """One copy upstream. `crlf_only`: the caller vouches that `content` has no bare CR or
        LF (the server checked the message on receipt), so it is not counted again."""
        rcpts = tuple(rcpts)
        payload = data_payload(content, crlf_only=crlf_only)
        for _attempt in range(2):
            smtp, reused = await self._acquire_or_result()
            if isinstance(smtp, RelayResult):
                return smtp
            try:
                result = await self._transaction(smtp, mail_from, rcpts, content, payload,
                                                 reused)
            except _Retry:
                self._discard(smtp)
                continue
            return result
        return self._temporary("dropped", (451, "4.4.2 upstream connection lost"),
                               "a reused connection was closed twice in a row")

    async def check(self) -> bool:
        """Readiness probe: does the upstream answer right now?

        A pooled connection is probed with NOOP, since a hung upstream can leave its
        sockets open; a dead one is dropped and a fresh connection tried.
        """
        for _attempt in range(2):
            smtp, reused = await self._acquire_or_result()
            if isinstance(smtp, RelayResult):
                return False
            if not reused:
                self._release(smtp)
                return True
            try:
                await smtp.noop(timeout=min(self.settings.timeout, 5))
            except (aiosmtplib.SMTPException, OSError):
                self._discard(smtp)
                continue
            self._release(smtp)
            return True
        return False

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for item in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(item.smtp.quit(), 2)
            item.smtp.close()

    # -- connections ----------------------------------------------------------------------
    async def _acquire_or_result(self) -> tuple[aiosmtplib.SMTP | RelayResult, bool]:
        now = time.monotonic()
        while self._idle:
            item = self._idle.pop()
            if item.smtp.is_connected and now - item.since < self.settings.idle_timeout:
                return item.smtp, True
            item.smtp.close()
        try:
            return await self._connect(), False
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
            return self._temporary("timeout", (451, "4.4.1 upstream connection timed out"),
                                   _cause(exc)), False
        except (aiosmtplib.SMTPException, OSError) as exc:
            code = getattr(exc, "code", 0)
            if 400 <= code < 600:
                # A greeting or EHLO refusal: the upstream is up but unwilling; retry later.
                reply = (451, "4.4.1 upstream refused the connection")
                return self._temporary("refused", reply, _cause(exc)), False
            return self._temporary("connect", (451, "4.4.1 upstream unreachable"),
                                   _cause(exc)), False
        except Exception as exc:  # the contract: a result, never an exception (a bad helo)
            log.exception("relay_connect_unexpected_error")
            return self._temporary("connect", (451, "4.4.1 upstream unreachable"),
                                   _cause(exc)), False

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        start_tls = {"opportunistic": None, "require": True, "off": False}[s.starttls]
        smtp = PipeliningSMTP(hostname=s.host, port=s.port, timeout=s.timeout,
                              local_hostname=self.helo, start_tls=start_tls,
                              validate_certs=s.starttls == "require")
        await smtp.connect()
        try:
            if smtp.is_ehlo_or_helo_needed:
                # Greet now: MAIL's options (SIZE, BODY, SMTPUTF8) depend on the EHLO reply.
                try:
                    await smtp.ehlo()
                except aiosmtplib.SMTPHeloError:
                    if not smtp.is_connected:
                        raise
                    await smtp.helo()
        except BaseException:  # refused, dropped, timed out or cancelled: never leave it open
            smtp.close()
            raise
        return smtp

    def _release(self, smtp: aiosmtplib.SMTP) -> None:
        if self._closed or not smtp.is_connected or len(self._idle) >= self.settings.pool_size:
            self._discard(smtp)
            return
        self._idle.append(_Idle(smtp, time.monotonic()))

    @staticmethod
    def _discard(smtp: aiosmtplib.SMTP) -> None:
        smtp.close()

    # -- one transaction ------------------------------------------------------------------
    async def _transaction(self, smtp: aiosmtplib.SMTP, mail_from: str, rcpts: tuple[str, ...],
                           content: bytes, payload: bytes, reused: bool) -> RelayResult:
        try:
            return await self._mail_rcpt_data(smtp, mail_from, rcpts, content, payload, reused)
        except _Retry:
            raise
        except aiosmtplib.SMTPTimeoutError as exc:
            self._discard(smtp)
            return self._temporary("timeout", (451, "4.4.2 upstream timed out"), _cause(exc))
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
            self._discard(smtp)
            return self._temporary("dropped", (451, "4.4.2 upstream connection lost"),
                                   _cause(exc))
        except Exception as exc:  # the contract: a result, never an exception
            log.exception("relay_unexpected_error")
            self._discard(smtp)
            return self._temporary("protocol", (451, "4.4.2 upstream protocol error"),
                                   _cause(exc))
        except BaseException:  # cancelled (the processing deadline) mid-transaction
            self._discard(smtp)
            raise

    async def _mail_rcpt_data(self, smtp: aiosmtplib.SMTP, mail_from: str,
                              rcpts: tuple[str, ...], content: bytes, payload: bytes,
                              reused: bool) -> RelayResult:
        options, encoding = self._mail_options(smtp, mail_from, rcpts, content)
        # MAIL and RCPT lines with the path built here: the same bytes as smtp.mail()/rcpt()
        # send, without their address parsing on every command.
        try:
            mail = b" ".join([b"MAIL", b"FROM:" + _path(mail_from, encoding), *options])
        except UnicodeEncodeError:  # nothing was sent: the upstream lacks SMTPUTF8
            return await self._refused_all(smtp, rcpts, NEEDS_SMTPUTF8, "MAIL")
        pending: list[tuple[str, bytes]] = []
        refused: dict[str, Reply] = {}
        for rcpt in rcpts:
            try:
                pending.append((rcpt, b"RCPT TO:" + _path(rcpt, encoding)))
            except UnicodeEncodeError:
                refused[rcpt] = NEEDS_SMTPUTF8
        if pending and self.settings.pipelining and isinstance(smtp, PipeliningSMTP) \
                and smtp.can_pipeline:
            return await self._pipelined(smtp, mail, pending, refused, rcpts, payload, reused)
        return await self._one_by_one(smtp, mail, pending, refused, rcpts, payload, reused)

    async def _one_by_one(self, smtp: aiosmtplib.SMTP, mail: bytes,
                          pending: list[tuple[str, bytes]], refused: dict[str, Reply],
                          rcpts: tuple[str, ...], payload: bytes,
                          reused: bool) -> RelayResult:
        """MAIL, then each RCPT, each awaiting its reply, stopping at the first reply that
        decides; `_judge` decides, as for a pipelined group. (It reads all replies so far each
        time: a few hundred cheap steps at most, next to one network round trip per command.)"""
        replies: list[aiosmtplib.SMTPResponse] = []
        accepted: list[str] = []
        sorted_refused = dict(refused)
        for command in (mail, *(command for _, command in pending)):
            try:
                replies.append(await smtp.execute_command(command))
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                if reused and not replies:  # dead before MAIL: nothing can have been accepted
                    raise _Retry() from None
                raise
            accepted, sorted_refused = [], dict(refused)
            result = self._judge(rcpts, pending, replies, accepted, sorted_refused)
            if result is not None:
                await self._reset(smtp)
                return result
        return await self._content(smtp, payload, accepted, sorted_refused, started=False)

    async def _pipelined(self, smtp: PipeliningSMTP, mail: bytes,
                         pending: list[tuple[str, bytes]], refused: dict[str, Reply],
                         rcpts: tuple[str, ...], payload: bytes,
                         reused: bool) -> RelayResult:
        """MAIL, the RCPTs and DATA in one write (RFC 2920), then the same decisions as one
        command at a time, made on all their replies (RFC 2920 3.1: every one is checked)."""
        assert smtp.protocol is not None
        accepted: list[str] = []
        try:
            replies = await smtp.protocol.send_pipelined(
                [mail, *(command for _, command in pending), b"DATA"], self.settings.timeout)
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
            # The replies that came before the connection ended may already decide, as they
            # would have one command at a time (a "421 closing" at MAIL is a tempfail).
            result = self._judge(rcpts, pending, list(getattr(exc, "replies", ())), accepted,
                                 refused)
            if result is not None:
                self._discard(smtp)
                return result
            if reused:  # no content was sent, so nothing can have been delivered
                raise _Retry() from None
            raise
        result = self._judge(rcpts, pending, replies, accepted, refused)
        if result is None:
            return await self._content(smtp, payload, accepted, refused, started=True)
        if replies[-1].code == 354 or any(reply.code == 421 for reply in replies):
            # DATA was accepted although nothing will follow it (or the server is closing):
            # closing before the final dot is the one way to end that transaction with no
            # message delivered (a lone dot would deliver an empty one to whoever accepted).
            self._discard(smtp)
        else:
            await self._reset(smtp)
        return result

    def _judge(self, rcpts: tuple[str, ...], pending: list[tuple[str, bytes]],
               replies: list[aiosmtplib.SMTPResponse], accepted: list[str],
               refused: dict[str, Reply]) -> RelayResult | None:
        """What one command at a time would have concluded from these replies (MAIL's, the
        RCPTs', DATA's; fewer if the connection ended): a result, or None when the message
        is to be sent (or, from a cut-short group, nothing was decided yet)."""
        if not replies:
            return None
        mail_reply, rcpt_replies = replies[0], replies[1:len(pending) + 1]
        if mail_reply.code != 250:
            return self._refusal(rcpts, (mail_reply.code, mail_reply.message), "MAIL")
        for (rcpt, _command), reply in zip(pending, rcpt_replies, strict=False):
            if _sort_rcpt(rcpt, reply, accepted, refused):
                return self._temporary("tempfail", (reply.code, reply.message))
        if len(rcpt_replies) < len(pending):
            return None  # cut short among the RCPT replies: undecided
        if not accepted:
            return _all_refused(refused)
        if len(replies) < len(pending) + 2:
            return None  # cut short before DATA's reply: undecided
        data_reply = replies[-1]
        if data_reply.code != 354:
            return self._data_refused(data_reply.code, data_reply.message, accepted, refused)
        return None

    async def _content(self, smtp: aiosmtplib.SMTP, payload: bytes, accepted: list[str],
                       refused: dict[str, Reply], *, started: bool) -> RelayResult:
        """DATA (unless a pipelined group `started` it), the message, and the result."""
        try:
            if started:
                response = await self._payload(smtp, payload)
            else:
                response = await self._data(smtp, payload)
        except aiosmtplib.SMTPDataError as exc:
            await self._reset(smtp)
            return self._data_refused(exc.code, exc.message, accepted, refused)
        self._release(smtp)
        return RelayResult(accepted=tuple(accepted), refused=refused,
                           reply=f"{response.code} {response.message}")

    async def _data(self, smtp: aiosmtplib.SMTP, payload: bytes) -> aiosmtplib.SMTPResponse:
        """DATA, then the payload from `gateway.smtp.wire` instead of `smtp.data()`'s regexes.

        Same replies and errors as `smtp.data()`: SMTPDataError for anything but 354 then
        250, and a disconnect or timeout closes the connection before it is raised. (A 421 to
        DATA also closes it, as `execute_command` does: the same tempfail, no reuse.)
        """
        start = await smtp.execute_command(b"DATA")
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        return await self._payload(smtp, payload)

    async def _payload(self, smtp: aiosmtplib.SMTP, payload: bytes) -> aiosmtplib.SMTPResponse:
        """The message after a 354 (`gateway.smtp.wire.data_payload`: dot-stuffed, ended), and the
        upstream's final reply (250 or SMTPDataError)."""
        protocol = smtp.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        try:
            protocol.write(payload)
            # No await between the write and read_response: the reply cannot arrive unread.
            response = await protocol.read_response(timeout=self.settings.timeout)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            smtp.close()
            raise
        if response.code != 250:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
        return response

    def _data_refused(self, code: int, message: str, accepted: list[str],
                      refused: dict[str, Reply]) -> RelayResult:
        if code < 500:
            return self._temporary("tempfail", (code, message))
        metrics.UPSTREAM_ERRORS.labels(kind="refused").inc()
        refused.update({r: (code, message) for r in accepted})
        return RelayResult(refused=refused, reply=f"{code} {message}")

    async def _refused_all(self, smtp: aiosmtplib.SMTP, rcpts: tuple[str, ...],
                           reply: Reply, stage: str) -> RelayResult:
        await self._reset(smtp)
        return self._refusal(rcpts, reply, stage)

    def _refusal(self, rcpts: tuple[str, ...], reply: Reply, stage: str) -> RelayResult:
        """Every recipient refused by one reply (to MAIL): a tempfail or a permanent refusal."""
        if reply[0] < 500:
            return self._temporary("tempfail", reply)
        metrics.UPSTREAM_ERRORS.labels(kind="refused").inc()
        return RelayResult(refused={r: reply for r in rcpts}, reply=f"{stage} refused")

    async def _reset(self, smtp: aiosmtplib.SMTP) -> None:
        """RSET after a refusal so the connection can be reused; drop it if that fails."""
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._discard(smtp)
            return
        self._release(smtp)

    def _mail_options(self, smtp: aiosmtplib.SMTP, mail_from: str, rcpts: tuple[str, ...],
                      content: bytes) -> tuple[list[bytes], str]:
        options: list[bytes] = []
        if smtp.supports_extension("size"):
            options.append(b"SIZE=%d" % len(content))
        if smtp.supports_extension("8bitmime") and not content.isascii():
            options.append(b"BODY=8BITMIME")
        addresses = (mail_from, *rcpts)
        if not all(a.isascii() for a in addresses) and smtp.supports_extension("smtputf8"):
            options.append(b"SMTPUTF8")
            return options, "utf-8"
        return options, "ascii"

    @staticmethod
    def _temporary(kind: str, reply: Reply, cause: str = "") -> RelayResult:
        """A deferred copy. `reply` is the upstream's own 4xx when it sent one (kind
        "tempfail", no `cause` needed), otherwise the gateway's description of what failed,
        with `cause` saying exactly what."""
        metrics.UPSTREAM_ERRORS.labels(kind=kind).inc()
        line = f"{reply[0]} {reply[1]}"
        return RelayResult(temporary=reply, reply=line, failure=kind,
                           cause=cause or f"upstream replied {line}")


def _cause(exc: BaseException) -> str:
    """An exception as an operator reads it: `SMTPConnectError: Error connecting to … [Errno
    111] … (ConnectionRefusedError)`, the TLS library's reason, the reply a refused greeting
    carried."""
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code:
        return f"upstream replied {exc.code} {exc.message}"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    inner = exc.__cause__ or exc.__context__
    if inner is not None and type(inner).__name__ not in text:
        detail = str(inner)
        text += f" ({type(inner).__name__}: {detail})" if detail and detail not in text \
            else f" ({type(inner).__name__})"
    return text


def _sort_rcpt(rcpt: str, reply: aiosmtplib.SMTPResponse, accepted: list[str],
               refused: dict[str, Reply]) -> bool:
    """File `rcpt` under accepted or refused by its RCPT reply; True when it was tempfailed."""
    if reply.code in (250, 251):
        accepted.append(rcpt)
    elif reply.code < 500:
        return True
    else:
        refused[rcpt] = (reply.code, reply.message)
    return False


def _all_refused(refused: dict[str, Reply]) -> RelayResult:
    metrics.UPSTREAM_ERRORS.labels(kind="refused").inc()
    return RelayResult(refused=refused, reply="all recipients refused")


def _path(address: str, encoding: str) -> bytes:
    """`<address>`, exactly as aiosmtplib's `quote_address` writes it, encoded for the wire.

    UnicodeEncodeError when the address needs SMTPUTF8 and `encoding` is ASCII; ValueError
    (from aiosmtplib) for an address that cannot be put on a command line safely.
    """
    if not address:
        return b"<>"
    if _PLAIN_ADDRESS.fullmatch(address):
        return b"<%s>" % address.encode(encoding)
    return quote_address(address).encode(encoding)
