"""The SMTP side: aiosmtpd's protocol with our limits, and the hooks that answer each command.

This module knows the wire, not the policy. The protocol counts sessions against the limit,
times DATA and never cuts off a message being decided; the hooks do relay control at RCPT and
hand DATA to the service (`Service.process`, implemented by `gateway.service.listener`), which
answers with one reply line. Every hook catches everything: an unexpected error answers
`451 4.3.0` and the daemon keeps serving.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import Counter
from typing import Any, Protocol

import structlog
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session, syntax

from gateway import metrics
from gateway.addresses import ascii_domain, routes_elsewhere
from gateway.config import Settings
from gateway.smtp import replies, xforward
from gateway.smtp.address import FastAddressSMTP
from gateway.smtp.anvil import ConnectionRates
from gateway.smtp.batching import BatchedRepliesSMTP
from gateway.smtp.dataread import BlockDataSMTP
from gateway.smtp.inflight import InFlight

log = structlog.get_logger("gateway.server")


class Service(Protocol):
    """What the SMTP side needs of the service behind it."""

    settings: Settings
    in_flight: InFlight  # the ceiling on message bytes held
    sessions: set[GatewaySMTP]
    clients: Counter[str]  # open sessions per client address (untrusted clients only)
    rates: ConnectionRates  # new connections per client address (untrusted clients only)
    draining: bool
    busy: int  # messages being decided or delivered
    idle: asyncio.Event  # set when `busy` drops to 0

    async def process(self, session: Session, envelope: SmtpEnvelope,
                      server: GatewaySMTP) -> str: ...


class GatewaySMTP(BlockDataSMTP, FastAddressSMTP, BatchedRepliesSMTP):
    """aiosmtpd's protocol plus session accounting, connection limits (in all and per client)
    and a DATA deadline."""

    def __init__(self, gateway: Service, **kwargs: Any):
        super().__init__(Handler(gateway), **kwargs)
        self.gateway = gateway
        self.data_line_limit = gateway.settings.smtp.line_length
        self.in_flight = gateway.in_flight
        self.started = time.monotonic()
        self.messages = 0
        self.busy = False  # deciding or delivering a message
        self.receiving = False  # inside DATA
        self.data_deadline = 0.0  # loop time: data_timeout from DATA, plus time for each byte
        self.client: str | None = None  # the address counted in `gateway.clients`

    async def _handle_client(self) -> None:
        gw = self.gateway
        refusal = self._refusal()
        if refusal is not None:
            await self.push(refusal)
            if self.transport is not None:
                self.transport.close()
            return
        gw.sessions.add(self)
        if self.client is not None:
            gw.clients[self.client] += 1
        metrics.SESSIONS.inc()
        try:
            await super()._handle_client()
        finally:
            gw.sessions.discard(self)
            if self.client is not None:
                gw.clients[self.client] -= 1
                if not gw.clients[self.client]:
                    del gw.clients[self.client]
            metrics.SESSIONS.dec()
            self._log_session()

    def _refusal(self) -> str | None:
        """Why this new connection is turned away (421), if it is: the daemon is draining or
        full, or this client address already holds its share of the sessions."""
        gw = self.gateway
        smtp = gw.settings.smtp
        if gw.draining or len(gw.sessions) >= smtp.max_sessions:
            return replies.TOO_MANY_CONNECTIONS
        ip = peer_ip(self.session.peer if self.session is not None else None)
        if ip is None or gw.settings.is_trusted(ip):
            return None
        if smtp.max_sessions_per_client and gw.clients[ip] >= smtp.max_sessions_per_client:
            log.warning("client_session_limit", client=ip, sessions=gw.clients[ip])
            return replies.TOO_MANY_FROM_CLIENT
        rate = smtp.max_connections_per_minute
        if rate and not gw.rates.allow(ip, self.loop.time(), rate):
            log.warning("client_rate_limit", client=ip, per_minute=rate)
            return replies.TOO_MANY_FROM_CLIENT
        self.client = ip
        return None

    @syntax("DATA")  # an override without it drops DATA from HELP
    async def smtp_DATA(self, arg: str) -> None:
        # aiosmtpd times a whole command, DATA included; a large message on a slow link needs an
        # idle timeout instead (as Postfix's smtpd_timeout), re-armed on every chunk, and a
        # deadline for the whole DATA phase that grows with what arrives (as Postfix's
        # smtpd_min_data_rate), so a client trickling a byte at a time is cut off all the same.
        smtp = self.gateway.settings.smtp
        self._timeout_duration = smtp.data_timeout
        self.data_deadline = self.loop.time() + smtp.data_timeout
        self.receiving = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self.receiving = False
            self._timeout_duration = smtp.command_timeout

    @syntax("XFORWARD attribute=value...")
    async def smtp_XFORWARD(self, arg: str | None) -> None:
        """Postfix's XFORWARD, from `smtp.xforward_hosts` only, outside a transaction."""
        if not self.gateway.settings.may_xforward(peer_ip(self.session.peer)):
            await self.push(xforward.NOT_AUTHORISED)
            return
        if self.envelope.mail_from is not None:
            await self.push(xforward.IN_TRANSACTION)
            return
        attrs = xforward.parse(arg)
        if isinstance(attrs, str):
            await self.push(attrs)
            return
        known = getattr(self.envelope, "xforward", None) or {}
        self.envelope.xforward = {**known, **attrs}  # Postfix may split them over commands
        await self.push(xforward.OK)

    def data_received(self, data: bytes) -> None:
        if self.receiving:
            smtp = self.gateway.settings.smtp
            self.data_deadline += len(data) / smtp.min_data_rate
            left = self.data_deadline - self.loop.time()
            self._reset_timeout(max(min(smtp.data_timeout, left), 0.001))
        super().data_received(data)

    def _timeout_cb(self) -> None:
        if self.busy:  # never cut off a message we are still deciding or delivering
            self._reset_timeout()
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(f"{replies.TIMEOUT}\r\n".encode())
        super()._timeout_cb()

    def _log_session(self) -> None:
        session = self.session
        peer = session.peer if session else None
        log.info("smtp_session", client=peer_ip(peer),
                 helo=getattr(session, "host_name", None),
                 tls=bool(getattr(session, "ssl", None)), messages=self.messages,
                 duration_ms=round((time.monotonic() - self.started) * 1000, 1))


class Handler:
    """aiosmtpd hooks. Holds no per-session state: aiosmtpd passes session and envelope."""

    def __init__(self, gateway: Service):
        self.gateway = gateway

    async def handle_EHLO(self, server: GatewaySMTP, session: Session, envelope: SmtpEnvelope,
                          hostname: str, responses: list[str]) -> list[str]:
        # PIPELINING (RFC 2920), as Postfix's smtpd announces it: a sending MTA then puts MAIL,
        # its RCPTs and DATA in one packet, two round trips fewer per message. aiosmtpd reads
        # and answers commands strictly one after another from its buffer, which is all the
        # server side of pipelining needs.
        session.host_name = hostname
        responses.insert(-1, "250-PIPELINING")  # before the last line, "250 HELP"
        if self.gateway.settings.may_xforward(peer_ip(session.peer)):
            responses.insert(-1, xforward.EHLO_LINE)
        return responses

    async def handle_RCPT(self, server: GatewaySMTP, session: Session, envelope: SmtpEnvelope,
                          address: str, rcpt_options: list[str]) -> str:
        try:
            return self._check_rcpt(session, envelope, address, rcpt_options)
        except Exception:
            log.exception("rcpt_hook_failed")
            return replies.TEMPFAIL

    def _check_rcpt(self, session: Session, envelope: SmtpEnvelope, address: str,
                    rcpt_options: list[str]) -> str:
        settings = self.gateway.settings
        if len(envelope.rcpt_tos) >= settings.smtp.max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        if routes_elsewhere(address):
            return replies.ROUTING_REFUSED
        if not address.isascii() and not envelope.smtp_utf8:
            return replies.NEEDS_SMTPUTF8
        if not settings.is_trusted(peer_ip(session.peer)) and not _is_district(address,
                                                                               settings):
            return replies.RELAY_DENIED
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return replies.RCPT_OK

    async def handle_DATA(self, server: GatewaySMTP, session: Session,
                          envelope: SmtpEnvelope) -> str:
        server.busy = True
        self.gateway.busy += 1
        try:
            return await self.gateway.process(session, envelope, server)
        except Exception:
            log.exception("data_hook_failed")
            metrics.MESSAGES.labels(outcome="error").inc()
            return replies.TEMPFAIL
        finally:
            server.busy = False
            self.gateway.busy -= 1
            if self.gateway.busy == 0:
                self.gateway.idle.set()

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp_session_error", error=type(error).__name__)
        return replies.SESSION_ERROR


def make_protocol(service: Service) -> GatewaySMTP:
    """A protocol instance for one new connection (the asyncio server's factory)."""
    s = service.settings.smtp
    return GatewaySMTP(service, data_size_limit=s.max_message_size, enable_SMTPUTF8=True,
                       decode_data=False, hostname=s.hostname, ident="district-gateway",
                       tls_context=_tls_context(service.settings),
                       require_starttls=s.tls.require, timeout=s.command_timeout,
                       command_call_limit=None)


def peer_ip(peer: Any) -> str | None:
    if isinstance(peer, tuple | list) and peer:
        return str(peer[0])
    return None


def _is_district(address: str, settings: Settings) -> bool:
    return ascii_domain(address.rpartition("@")[2]) in settings.district.domains


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    tls = settings.smtp.tls
    if not (tls.cert and tls.key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    return context
