"""One listening SMTP service: its sessions, the current Runtime, the relay and the quarantine
store, and the path of one message from the end of DATA to its one reply.

`process` builds the Envelope, has the message decided where it suits (`gateway.dispatch`),
has the Decision carried out (`gateway.actions.execute`) and turns the Outcome into the reply.
A message that cannot be decided is held (`pipeline.fail_closed`); one that cannot be held or
delivered in time gets a 451, never a 250.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session

from gateway import metrics
from gateway.actions.execute import Executor, Outcome
from gateway.auth.headers import strip_forged
from gateway.auth.service import Authenticator
from gateway.auth.verify import MessageFacts
from gateway.config import Settings
from gateway.dispatch import decide_message
from gateway.logprivacy import Redactor
from gateway.model import Decision, Envelope
from gateway.pipeline import fail_closed
from gateway.quarantine.base import QuarantineStore
from gateway.runtime import Runtime
from gateway.smtp import replies
from gateway.smtp.anvil import ConnectionRates
from gateway.smtp.client import Relay
from gateway.smtp.inflight import InFlight
from gateway.smtp.server import GatewaySMTP, make_protocol, peer_ip
from gateway.smtp.wire import has_bare_newline, to_crlf
from gateway.smtp.xforward import forwarded

log = structlog.get_logger("gateway.server")


class Gateway:
    """One listening daemon: sessions, the current Runtime, relay pool and quarantine store."""

    def __init__(self, settings: Settings, runtime: Runtime, store: QuarantineStore | None,
                 relay: Relay | None = None):
        self.settings = settings
        self.runtime = runtime
        self.store = store
        self.relay = relay or Relay(settings.upstream, settings.smtp.hostname)
        self.authenticator = _authenticator(settings)
        self.executor = Executor(settings, self.relay, store, self._redact,
                                 _sealer(self.authenticator))
        self.in_flight = InFlight(settings.smtp.max_in_flight)
        self.sessions: set[GatewaySMTP] = set()
        self.clients: Counter[str] = Counter()
        self.rates = ConnectionRates()
        self.busy = 0
        self.idle = asyncio.Event()
        self.draining = False
        self.server: asyncio.Server | None = None
        self.background: set[asyncio.Task[None]] = set()

    def _redact(self, text: str) -> str:
        return Redactor(self.runtime.directory).text(text)

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
        return make_protocol(self)

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
                session.transport.write(f"{replies.SHUTTING_DOWN}\r\n".encode())
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
        if settings.authentication != self.settings.authentication \
                or settings.smtp.hostname != self.settings.smtp.hostname:
            old_auth, self.authenticator = self.authenticator, _authenticator(settings)
            if old_auth is not None:
                old_auth.close()
        self.settings = settings
        self.runtime = runtime
        self.in_flight.ceiling = settings.smtp.max_in_flight  # what is held stays counted
        self.executor = Executor(settings, self.relay, self.store, self._redact,
                                 _sealer(self.authenticator))

    # -- one message ----------------------------------------------------------------------
    async def process(self, session: Session, smtp_env: SmtpEnvelope,
                      server: GatewaySMTP) -> str:
        started = time.monotonic()
        content: bytes = smtp_env.original_content or b""
        envelope = self._envelope(session, smtp_env, content)
        metrics.MESSAGE_BYTES.observe(len(content))
        if has_bare_newline(content):
            if self.settings.smtp.bare_newline == "reject":
                return self._finish(envelope, Outcome(*replies.BARE_NEWLINE, "rejected"), None,
                                    started, started)
            content = to_crlf(content)
            envelope = replace(envelope, content=content)
        try:
            # asyncio.timeout, not wait_for: wait_for wraps the coroutine in a task per message.
            async with asyncio.timeout(self.settings.smtp.processing_deadline):
                outcome, decision, decided = await self._decide_and_act(envelope)
        except TimeoutError:
            log.error("processing_deadline_exceeded", queue_id=envelope.queue_id)
            outcome = Outcome(*replies.PROCESSING_TIMEOUT, "tempfail")
            decision, decided = None, time.monotonic()
        server.messages += 1
        return self._finish(envelope, outcome, decision, started, decided)

    async def _decide_and_act(self, envelope: Envelope) -> tuple[Outcome, Decision, float]:
        if not envelope.client_trusted:
            envelope = await self._authenticate(envelope)
        decision = await self._decide(envelope)
        decided = time.monotonic()
        outcome = await self.executor.carry_out(decision)
        if outcome.code == 250 and decision.notifications:
            # Only when there is something to do: a task per message costs more than the
            # check, and most messages have no notice. (Bounces went out before this reply,
            # and P5/P6 contacts were recorded with the decision.)
            self._keep(self._follow_up(self.executor, decision, outcome))
        return outcome, decision, decided

    async def _follow_up(self, executor: Executor, decision: Decision, outcome: Outcome) -> None:
        """Bounces and notices: after the reply, never delaying it."""
        try:
            await executor.follow_up(decision, outcome)
        except Exception:
            log.exception("follow_up_failed", queue_id=decision.envelope.queue_id)

    async def _authenticate(self, envelope: Envelope) -> Envelope:
        """Mail from outside: SPF, DKIM, DMARC and ARC results on the envelope and in an
        Authentication-Results header on top; forged gateway headers removed, so no copy
        carries them (relayed, annotated or held)."""
        authenticator = self.authenticator
        if authenticator is None:
            return replace(envelope, content=strip_forged(envelope.content,
                                                          self.settings.smtp.hostname))
        facts = MessageFacts(envelope.client_ip or "", envelope.helo or "",
                             envelope.mail_from, envelope.content)
        results = await authenticator.check(facts)
        metrics.AUTH_RESULTS.labels(
            dmarc=next((c.result for c in results.checks if c.method == "dmarc"), "none")).inc()
        return replace(envelope, auth=results,
                       content=authenticator.annotate(envelope.content, results))

    def _keep(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)  # referenced until done, so it is never collected early
        task.add_done_callback(self.background.discard)

    async def _decide(self, envelope: Envelope) -> Decision:
        started = time.monotonic()
        try:
            decision = await decide_message(envelope, self.runtime, self.store)
        except Exception as exc:
            log.exception("decision_failed", queue_id=envelope.queue_id)
            decision = fail_closed(envelope, type(exc).__name__)
        metrics.INSPECTION_SECONDS.observe(time.monotonic() - started)
        return decision

    def _envelope(self, session: Session, smtp_env: SmtpEnvelope, content: bytes) -> Envelope:
        # Behind Postfix, the client Postfix spoke to (XFORWARD, from xforward_hosts only).
        ip = forwarded(smtp_env, "ADDR") or peer_ip(session.peer)
        helo = forwarded(smtp_env, "HELO") or session.host_name
        mail_from = "" if smtp_env.mail_from in (None, "<>") else smtp_env.mail_from
        return Envelope(mail_from=mail_from, rcpt_tos=tuple(smtp_env.rcpt_tos),
                        content=content, client_ip=ip,
                        client_trusted=self.settings.is_trusted(ip), helo=helo,
                        queue_id=secrets.token_hex(6).upper(), received_at=datetime.now(UTC),
                        origin_queue_id=forwarded(smtp_env, "IDENT") or "")

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


def _authenticator(settings: Settings) -> Authenticator | None:
    return Authenticator(settings) if settings.authentication.enabled else None


def _sealer(authenticator: Authenticator | None) -> Callable[[bytes], bytes] | None:
    sealer = authenticator.sealer if authenticator is not None else None
    return sealer.seal if sealer is not None else None


def _log_message(envelope: Envelope, outcome: Outcome, decision: Decision | None,
                 started: float, decided: float, finished: float, redact: Redactor) -> None:
    fields: dict[str, Any] = {}
    if decision is not None:
        fields = {"sender_role": str(decision.sender.role),
                  "actions": [str(v.action) for v in decision.verdicts],
                  "rules": sorted({r for v in decision.verdicts for r in v.rules}),
                  "findings": decision.inspection.loggable_findings()}
        if decision.envelope.auth is not None:
            fields["auth"] = {c.method: c.result for c in reversed(decision.envelope.auth.checks)}
    # No student address in it (gateway.logprivacy).
    if envelope.origin_queue_id:
        fields["origin_queue_id"] = envelope.origin_queue_id
    log.info("message", queue_id=envelope.queue_id, client=envelope.client_ip,
             mail_from=redact.address(envelope.mail_from),
             rcpt_count=len(envelope.rcpt_tos), size=len(envelope.content),
             outcome=outcome.kind, reply=redact.text(outcome.line),
             upstream_reply=redact.text(outcome.upstream_reply),
             quarantine_id=outcome.quarantine_id,
             delivered=len(outcome.delivered), held=len(outcome.held),
             refused=len(outcome.refused), decide_ms=round((decided - started) * 1000, 2),
             total_ms=round((finished - started) * 1000, 2), **fields)


def _count_message(outcome: Outcome, decision: Decision | None) -> None:
    metrics.MESSAGES.labels(outcome=outcome.kind).inc()
    metrics.SMTP_REPLIES.labels(code_class=f"{outcome.code // 100}xx").inc()
    for verdict in decision.verdicts if decision is not None else ():
        metrics.RECIPIENTS.labels(action=str(verdict.action)).inc()
        for match in verdict.matches:
            metrics.RULE_MATCHES.labels(rule=match.rule,
                                        mode="monitor" if match.monitor else "enforce").inc()
