"""The SMTP side: aiosmtpd sessions, limits, relay control, and one reply per message.

This module is I/O shell only. It builds an Envelope, asks `pipeline.decide` what to do (off
the event loop for big messages), hands the Decision to the Executor and turns the Outcome into
one SMTP reply. Every hook catches everything: an unexpected error answers `451 4.3.0` and the
daemon keeps serving (DESIGN habit 1).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import ssl
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session

from gateway import extract, metrics
from gateway.actions.execute import Executor, Outcome
from gateway.actions.relay import Relay
from gateway.config import Settings
from gateway.dataread import BlockDataSMTP
from gateway.directory import ascii_domain, routes_elsewhere
from gateway.extract import pdfdefer
from gateway.logprivacy import Redactor
from gateway.model import ContactHistory, Decision, Envelope, NoHistory
from gateway.pipeline import decide, fail_closed
from gateway.quarantine.base import QuarantineStore
from gateway.runtime import Runtime
from gateway.smtpaddr import FastAddressSMTP
from gateway.smtpreplies import BatchedRepliesSMTP
from gateway.wire import has_bare_newline, to_crlf

log = structlog.get_logger("gateway.server")

# Small messages are decided on the loop (a thread hop costs more than deciding them), with
# only text extractors allowed (`extract.text_only`): a part that turns out to be an archive,
# a workbook or a PDF, whatever it was labelled, sends the whole decision to a thread. Big
# messages and any declaring an application/* part other than PDF (an XLSX parse takes
# milliseconds, a hostile one up to the time budget) go to a thread straight away, so they
# never delay the other sessions' replies. A small message whose only documents are PDFs is
# decided on the loop too: the PDF helper process reads them meanwhile (`extract.pdfdefer`).
INLINE_DECIDE_LIMIT = 64 * 1024
# A header line (at the start or after a newline) announcing an application/* part. Written
# with a literal "\n" first so the regex engine can skip from newline to newline; the same
# pattern under ^/MULTILINE/IGNORECASE tried every byte (9x slower).
_APPLICATION_HEADER = rb"(?i:content-type:[ \t]*application/([!#$%&'*+.^_`|~0-9a-z-]*))"
APPLICATION_PART = re.compile(rb"\n" + _APPLICATION_HEADER)
APPLICATION_FIRST_LINE = re.compile(_APPLICATION_HEADER)
TEMPFAIL = "451 4.3.0 Temporary local problem, try again later"


class GatewaySMTP(BlockDataSMTP, FastAddressSMTP, BatchedRepliesSMTP):
    """aiosmtpd's protocol plus session accounting, a connection limit and a DATA timeout."""

    def __init__(self, gateway: Gateway, **kwargs: Any):
        super().__init__(gateway.handler, **kwargs)
        self.gateway = gateway
        self.started = time.monotonic()
        self.messages = 0
        self.busy = False  # deciding or delivering a message
        self.receiving = False  # inside DATA

    async def _handle_client(self) -> None:
        gw = self.gateway
        if gw.draining or len(gw.sessions) >= gw.settings.smtp.max_sessions:
            await self.push("421 4.3.2 Too many connections or shutting down, try again later")
            if self.transport is not None:
                self.transport.close()
            return
        gw.sessions.add(self)
        metrics.SESSIONS.inc()
        try:
            await super()._handle_client()
        finally:
            gw.sessions.discard(self)
            metrics.SESSIONS.dec()
            self._log_session()

    async def smtp_DATA(self, arg: str) -> None:
        # aiosmtpd times a whole command, DATA included; a large message on a slow link needs an
        # idle timeout instead (as Postfix's smtpd_timeout): re-armed on every chunk received.
        self._timeout_duration = self.gateway.settings.smtp.data_timeout
        self.receiving = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self.receiving = False
            self._timeout_duration = self.gateway.settings.smtp.command_timeout

    def data_received(self, data: bytes) -> None:
        if self.receiving:
            self._reset_timeout()
        super().data_received(data)

    def _timeout_cb(self) -> None:
        if self.busy:  # never cut off a message we are still deciding or delivering
            self._reset_timeout()
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"421 4.4.2 Error: timeout exceeded\r\n")
        super()._timeout_cb()

    def _log_session(self) -> None:
        session = self.session
        peer = session.peer if session else None
        log.info("smtp_session", client=_peer_ip(peer),
                 helo=getattr(session, "host_name", None),
                 tls=bool(getattr(session, "ssl", None)), messages=self.messages,
                 duration_ms=round((time.monotonic() - self.started) * 1000, 1))


class Handler:
    """aiosmtpd hooks. Holds no per-session state: aiosmtpd passes session and envelope."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway

    async def handle_EHLO(self, server: GatewaySMTP, session: Session, envelope: SmtpEnvelope,
                          hostname: str, responses: list[str]) -> list[str]:
        # PIPELINING (RFC 2920), as Postfix's smtpd announces it: a sending MTA then puts MAIL,
        # its RCPTs and DATA in one packet, two round trips fewer per message. aiosmtpd reads
        # and answers commands strictly one after another from its buffer, which is all the
        # server side of pipelining needs.
        session.host_name = hostname
        responses.insert(-1, "250-PIPELINING")  # before the last line, "250 HELP"
        return responses

    async def handle_RCPT(self, server: GatewaySMTP, session: Session, envelope: SmtpEnvelope,
                          address: str, rcpt_options: list[str]) -> str:
        try:
            return self._check_rcpt(session, envelope, address, rcpt_options)
        except Exception:
            log.exception("rcpt_hook_failed")
            return TEMPFAIL

    def _check_rcpt(self, session: Session, envelope: SmtpEnvelope, address: str,
                    rcpt_options: list[str]) -> str:
        settings = self.gateway.settings
        if len(envelope.rcpt_tos) >= settings.smtp.max_recipients:
            return "452 4.5.3 Too many recipients"
        if routes_elsewhere(address):
            return "550 5.7.1 Routing characters in the local part are not accepted"
        if not address.isascii() and not envelope.smtp_utf8:
            return "553 5.6.7 Non-ASCII address needs SMTPUTF8"
        if not settings.is_trusted(_peer_ip(session.peer)) and not _is_district(address,
                                                                               settings):
            return "554 5.7.1 Relay access denied"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: GatewaySMTP, session: Session,
                          envelope: SmtpEnvelope) -> str:
        server.busy = True
        self.gateway.busy += 1
        try:
            return await self.gateway.process(session, envelope, server)
        except Exception:
            log.exception("data_hook_failed")
            metrics.MESSAGES.labels(outcome="error").inc()
            return TEMPFAIL
        finally:
            server.busy = False
            self.gateway.busy -= 1
            if self.gateway.busy == 0:
                self.gateway.idle.set()

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp_session_error", error=type(error).__name__)
        return "421 4.3.0 Temporary local problem, closing connection"


class Gateway:
    """One listening daemon: sessions, the current Runtime, relay pool and quarantine store."""

    def __init__(self, settings: Settings, runtime: Runtime, store: QuarantineStore | None,
                 relay: Relay | None = None):
        self.settings = settings
        self.runtime = runtime
        self.store = store
        self.relay = relay or Relay(settings.upstream, settings.smtp.hostname)
        self.executor = Executor(settings, self.relay, store, self._redact)
        self.handler = Handler(self)
        self.sessions: set[GatewaySMTP] = set()
        self.busy = 0
        self.idle = asyncio.Event()
        self.draining = False
        self.server: asyncio.Server | None = None
        self.background: set[asyncio.Task[None]] = set()

    def _redact(self, text: str) -> str:
        return Redactor(self.runtime.directory).text(text)

    @property
    def history(self) -> ContactHistory:
        return self.store if self.store is not None else NoHistory()

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, *, sock: Any = None, reuse_port: bool = False) -> None:
        loop = asyncio.get_running_loop()
        address = {"sock": sock} if sock is not None else {
            "host": self.settings.listen.host, "port": self.settings.listen.port,
            "reuse_port": reuse_port or None}
        self.server = await loop.create_server(self._protocol, **address)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    def _protocol(self) -> GatewaySMTP:
        s = self.settings.smtp
        return GatewaySMTP(self, data_size_limit=s.max_message_size, enable_SMTPUTF8=True,
                           decode_data=False, hostname=s.hostname, ident="district-gateway",
                           tls_context=_tls_context(self.settings),
                           require_starttls=s.tls.require, timeout=s.command_timeout,
                           command_call_limit=None)

    async def drain(self, timeout: float | None = None) -> None:
        """Stop accepting, let messages in DATA finish (bounded), then close idle sessions."""
        self.draining = True
        if self.server is not None:
            self.server.close()
        deadline = self.settings.smtp.drain_timeout if timeout is None else timeout
        self.idle.clear()
        if self.busy:
            try:
                await asyncio.wait_for(self.idle.wait(), deadline)
            except TimeoutError:
                log.warning("drain_timeout", in_flight=self.busy)
        for session in list(self.sessions):
            if session.transport is not None and not session.busy:
                session.transport.write(b"421 4.3.2 Service shutting down\r\n")
                session.transport.close()
        if self.background:  # bounces and notices of messages already answered
            _done, pending = await asyncio.wait(set(self.background),
                                                timeout=self.settings.smtp.drain_timeout)
            if pending:
                log.warning("drain_follow_up_timeout", pending=len(pending))
        await self.relay.close()

    def swap(self, settings: Settings, runtime: Runtime) -> None:
        """Apply a reloaded configuration; listening address changes need a restart."""
        if settings.upstream != self.settings.upstream:
            old = self.relay
            self.relay = Relay(settings.upstream, settings.smtp.hostname)
            self._keep(old.close())
        if settings.listen != self.settings.listen:
            log.warning("reload_listen_unchanged", reason="listen address needs a restart")
        self.settings = settings
        self.runtime = runtime
        self.executor = Executor(settings, self.relay, self.store, self._redact)

    # -- one message ----------------------------------------------------------------------
    async def process(self, session: Session, smtp_env: SmtpEnvelope,
                      server: GatewaySMTP) -> str:
        started = time.monotonic()
        content: bytes = smtp_env.original_content or b""
        envelope = self._envelope(session, smtp_env, content)
        metrics.MESSAGE_BYTES.observe(len(content))
        if has_bare_newline(content):
            if self.settings.smtp.bare_newline == "reject":
                return self._finish(envelope, Outcome(
                    550, "5.5.2 Message contains a bare CR or LF (SMTP smuggling protection)",
                    "rejected"), None, started, started)
            content = to_crlf(content)
            envelope = _replace_content(envelope, content)
        try:
            # asyncio.timeout, not wait_for: wait_for wraps the coroutine in a task per message.
            async with asyncio.timeout(self.settings.smtp.processing_deadline):
                outcome, decision, decided = await self._decide_and_act(envelope)
        except TimeoutError:
            log.error("processing_deadline_exceeded", queue_id=envelope.queue_id)
            outcome, decision, decided = Outcome(451, "4.3.0 Processing timed out, try again "
                                                 "later", "tempfail"), None, time.monotonic()
        server.messages += 1
        return self._finish(envelope, outcome, decision, started, decided)

    async def _decide_and_act(self, envelope: Envelope) -> tuple[Outcome, Decision, float]:
        decision = await self._decide(envelope)
        decided = time.monotonic()
        outcome = await self.executor.carry_out(decision)
        if outcome.code == 250 and (outcome.refused or decision.notifications
                                    or (decision.contacts and self.store is not None)):
            # Only when there is something to do: a task per message costs more than the
            # check, and most messages have no bounce, notice or contact record.
            self._keep(self._follow_up(self.executor, decision, outcome))
        return outcome, decision, decided

    async def _follow_up(self, executor: Executor, decision: Decision, outcome: Outcome) -> None:
        """Bounces, notices and P6 contact records: after the reply, never delaying it."""
        try:
            await executor.follow_up(decision, outcome)
        except Exception:
            log.exception("follow_up_failed", queue_id=decision.envelope.queue_id)
        if decision.contacts and self.store is not None:
            await self._record_contacts(decision)

    def _keep(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)  # referenced until done, so it is never collected early
        task.add_done_callback(self.background.discard)

    async def _decide(self, envelope: Envelope) -> Decision:
        runtime = self.runtime
        started = time.monotonic()
        try:
            content = envelope.content
            decision = None
            if len(content) <= INLINE_DECIDE_LIMIT:
                kinds = application_parts(content)
                if not kinds:
                    try:
                        with extract.text_only():
                            decision = decide(envelope, runtime, self.history)
                    except extract.NotOnTheLoop:
                        pass  # a file that needs a real extractor: start again in a thread
                elif kinds == {b"pdf"}:
                    decision = await self._decide_reading_pdfs(envelope, runtime)
            if decision is None:
                decision = await asyncio.to_thread(decide, envelope, runtime, self.history)
        except Exception as exc:
            log.exception("decision_failed", queue_id=envelope.queue_id)
            decision = fail_closed(envelope, type(exc).__name__)
        metrics.INSPECTION_SECONDS.observe(time.monotonic() - started)
        return decision

    async def _decide_reading_pdfs(self, envelope: Envelope, runtime: Runtime) -> Decision | None:
        """A small message whose only documents are PDFs, decided on the loop while the PDF
        helper reads them (`gateway.extract.pdfdefer`); None when it has to go to a thread."""
        inspector = runtime.inspector
        begin, finish = getattr(inspector, "begin", None), getattr(inspector, "finish", None)
        if begin is None or finish is None:  # an inspector without the two steps (a double)
            return None
        try:
            inspection = await pdfdefer.inspect(begin, finish, envelope.content,
                                                runtime.settings.inspection)
        except extract.NotOnTheLoop:
            return None
        return decide(envelope, runtime, self.history, inspection)

    async def _record_contacts(self, decision: Decision) -> None:
        at = decision.envelope.received_at or datetime.now(UTC)
        store = self.store
        assert store is not None

        def record() -> None:
            for student_id, staff_id in decision.contacts:
                store.record_contact(student_id, staff_id, at)

        try:
            await asyncio.to_thread(record)
        except Exception:
            log.exception("contact_record_failed", queue_id=decision.envelope.queue_id)

    def _envelope(self, session: Session, smtp_env: SmtpEnvelope, content: bytes) -> Envelope:
        ip = _peer_ip(session.peer)
        mail_from = "" if smtp_env.mail_from in (None, "<>") else smtp_env.mail_from
        return Envelope(mail_from=mail_from, rcpt_tos=tuple(smtp_env.rcpt_tos),
                        content=content, client_ip=ip,
                        client_trusted=self.settings.is_trusted(ip), helo=session.host_name,
                        queue_id=secrets.token_hex(6).upper(), received_at=datetime.now(UTC))

    def _finish(self, envelope: Envelope, outcome: Outcome, decision: Decision | None,
                started: float, decided: float) -> str:
        """The reply line. The metrics and the per-message log line are written on the loop's
        next turn, after the reply has gone out: together they cost 0.1-0.2 ms of a message
        measured in the running gateway (the `info` line more), which the client need not
        wait for, and a failure in them can no longer turn a delivered message into a 451."""
        # The directory that classified the message decides what is redacted, even if a
        # reload swaps it before the line is written.
        redact = Redactor(self.runtime.directory)
        asyncio.get_running_loop().call_soon(self._account, envelope, outcome, decision,
                                             started, decided, time.monotonic(), redact)
        return outcome.line

    @staticmethod
    def _account(envelope: Envelope, outcome: Outcome, decision: Decision | None,
                 started: float, decided: float, finished: float, redact: Redactor) -> None:
        """The message line, then the metrics; a failure in either is logged by name only
        (the loop's own report would print the arguments: addresses, the upstream reply)."""
        try:
            _log_message(envelope, outcome, decision, started, decided, finished, redact)
        except Exception:
            log.exception("message_log_failed", queue_id=envelope.queue_id)
        try:
            _count_message(outcome, decision)
        except Exception:
            log.exception("metrics_failed", queue_id=envelope.queue_id)


def _log_message(envelope: Envelope, outcome: Outcome, decision: Decision | None,
                 started: float, decided: float, finished: float, redact: Redactor) -> None:
    fields: dict[str, Any] = {}
    if decision is not None:
        fields = {"sender_role": str(decision.sender.role),
                  "actions": [str(v.action) for v in decision.verdicts],
                  "rules": sorted({r for v in decision.verdicts for r in v.rules}),
                  "findings": decision.inspection.loggable_findings()}
    # No student address in it (gateway.logprivacy).
    log.info("message", queue_id=envelope.queue_id, client=envelope.client_ip,
             mail_from=redact.address(envelope.mail_from),
             rcpt_count=len(envelope.rcpt_tos), size=len(envelope.content),
             outcome=outcome.outcome, reply=redact.text(outcome.line),
             upstream_reply=redact.text(outcome.upstream_reply),
             quarantine_id=outcome.quarantine_id,
             delivered=len(outcome.delivered), held=len(outcome.held),
             refused=len(outcome.refused), decide_ms=round((decided - started) * 1000, 2),
             total_ms=round((finished - started) * 1000, 2), **fields)


def _count_message(outcome: Outcome, decision: Decision | None) -> None:
    metrics.MESSAGES.labels(outcome=outcome.outcome).inc()
    metrics.SMTP_REPLIES.labels(code_class=f"{outcome.code // 100}xx").inc()
    for verdict in decision.verdicts if decision is not None else ():
        metrics.RECIPIENTS.labels(action=str(verdict.action)).inc()
        for match in verdict.matches:
            metrics.RULE_MATCHES.labels(rule=match.rule,
                                        mode="monitor" if match.monitor else "enforce").inc()


def application_parts(content: bytes) -> set[bytes]:
    """The subtypes of the application/* parts header lines announce (b"pdf", ...), lowered."""
    kinds = {m.group(1).lower() for m in APPLICATION_PART.finditer(content)}
    first = APPLICATION_FIRST_LINE.match(content)
    if first:
        kinds.add(first.group(1).lower())
    return kinds


def _peer_ip(peer: Any) -> str | None:
    if isinstance(peer, tuple | list) and peer:
        return str(peer[0])
    return None


def _is_district(address: str, settings: Settings) -> bool:
    return ascii_domain(address.rpartition("@")[2]) in settings.district.domains


def _replace_content(envelope: Envelope, content: bytes) -> Envelope:
    from dataclasses import replace
    return replace(envelope, content=content)


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    tls = settings.smtp.tls
    if not (tls.cert and tls.key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    return context
