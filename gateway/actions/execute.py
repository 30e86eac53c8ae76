"""Carry out a Decision: hold, relay, annotate, bounce, notify; fold it all into one SMTP reply.

Order matters for "no mail lost":
1. held copies are written to the quarantine first (durably). If that fails the client gets
   451 and nothing has been relayed, so its retry repeats nothing;
2. then relayed/annotated copies go upstream. A temporary failure of any copy gives 451 for
   the whole message; on the retry the held copy is recognised (same bytes and recipients) and
   not held twice;
3. a bounce (DSN) to the sender for recipients refused by policy or by the upstream, before
   the reply, so that it never exists only in memory: if the upstream does not take it, it is
   held in the quarantine (rule DSN) for a reviewer to release;
4. only then 250, and after it the decision's notices (P6 supervisor, …).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from typing import Any

import structlog

from gateway import metrics
from gateway.actions.deliver import CopyKind, send_copies
from gateway.actions.dsn import build_dsn
from gateway.actions.trace import received_header
from gateway.config import Settings
from gateway.model import Action, Decision, Envelope, Notification, RuleMatch, Verdict
from gateway.quarantine.base import HoldRequest, QuarantineStore
from gateway.smtp import replies
from gateway.smtp.client import Relay, RelayResult
from gateway.smtp.replies import POLICY_REJECT, STORE_FAILED

log = structlog.get_logger("gateway.actions")

BOUNCE_RULE = "DSN"  # the rule a held bounce is listed under in the quarantine

@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one message; `code`/`text` form the single reply to the client."""

    code: int
    text: str
    kind: str  # relayed | held | split | rejected | tempfail | error
    delivered: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    quarantine_id: str | None = None
    upstream_reply: str = ""

    @property
    def line(self) -> str:
        return f"{self.code} {self.text}"


class Executor:
    """Shared by all sessions of one daemon process."""

    def __init__(self, settings: Settings, relay: Relay, store: QuarantineStore | None,
                 redact: Callable[[str], str] = str,
                 seal: Callable[[bytes], bytes] | None = None):
        self.settings = settings
        self.relay = relay
        self.store = store
        self.seal = seal  # ARC-seals annotated copies (gateway.auth.seal), when configured
        self.redact = redact  # upstream replies in our log lines may quote a student's address

    async def carry_out(self, decision: Decision) -> Outcome:
        env = decision.envelope
        by_action = _group(decision.verdicts)
        held = tuple(v.envelope_address for v in by_action[Action.HOLD])
        quarantine_id = None
        if held:
            try:
                quarantine_id = await self._hold(decision, by_action[Action.HOLD])
            except Exception:
                log.exception("quarantine_write_failed", queue_id=env.queue_id)
                return Outcome(*STORE_FAILED, "tempfail")
        results = await self._relay_copies(decision, by_action)
        deferred = next((r for r in results if r.temporary), None)
        upstream_reply = "; ".join(r.reply for r in results if r.reply)
        if deferred is not None:
            self._log_deferred(env.queue_id, deferred)
            return Outcome(451, deferred_reply(deferred), "tempfail", held=held,
                           quarantine_id=quarantine_id, upstream_reply=upstream_reply)
        delivered = tuple(r for res in results for r in res.accepted)
        refused = {r: reply for res in results for r, reply in res.refused.items()}
        refused.update(_policy_refusals(by_action[Action.REJECT]))
        outcome = _fold(decision, delivered, held, refused, quarantine_id, upstream_reply)
        if outcome.code == 250 and outcome.refused:
            await self._bounce(decision, outcome.refused)
        return outcome

    async def follow_up(self, decision: Decision, outcome: Outcome) -> None:
        """After a 250: the decision's notices.

        Run after the reply, outside the processing deadline: a slow notice must never turn
        an accepted message into a 451 that the client would retry (duplicating delivery).
        """
        if outcome.code != 250:
            return
        env = decision.envelope
        notices = decision.notifications
        if not env.sender_trustworthy:
            for notice in (n for n in notices if n.kind == "sender"):
                _suppressed(notice.kind, env.queue_id, 1)
            notices = tuple(n for n in notices if n.kind != "sender")
        await self.send_notifications(notices, env.queue_id)

    # -- steps ----------------------------------------------------------------------------
    def _log_deferred(self, queue_id: str, result: RelayResult) -> None:
        """Where and why, as Postfix's `connect to host[addr]:port: Connection refused`: the
        operator's first question when mail is deferred is which server failed and how."""
        upstream = self.settings.upstream
        log.warning("upstream_deferred", queue_id=queue_id, host=upstream.host,
                    port=upstream.port, failure=result.failure, cause=self.redact(result.cause))

    async def _hold(self, decision: Decision, verdicts: Sequence[Verdict]) -> str:
        if self.store is None:
            raise RuntimeError("no quarantine store configured")
        request = hold_request(decision, verdicts)
        result = await asyncio.to_thread(self.store.hold, request)
        if not result.duplicate:
            metrics.QUARANTINE_HELD.inc()
        return result.id

    async def _relay_copies(self, decision: Decision,
                            by_action: dict[Action, list[Verdict]]) -> list[RelayResult]:
        env = decision.envelope
        groups: dict[CopyKind, list[str]] = defaultdict(list)
        for verdict in by_action[Action.RELAY] + by_action[Action.ANNOTATE]:
            groups[(verdict.annotations, decision.body_notice)].append(verdict.envelope_address)
        # The server made the received content CRLF-only (or refused it).
        return await send_copies(self.relay.send, env.mail_from, groups, env.content,
                                 received_header(env, self.settings.smtp.hostname),
                                 received_crlf_only=True, seal=self.seal)

    async def _bounce(self, decision: Decision, refused: dict[str, tuple[int, str]]) -> None:
        """Send the bounce, or hold it when the upstream does not take it.

        A gateway has no mail queue to retry a bounce from, and one kept in memory would be
        lost with the process: the sender, who got 250, would never learn that a recipient
        was refused. The quarantine is the durable place it has. Only when that fails too is
        the bounce lost, and logged.
        """
        env = decision.envelope
        if not env.mail_from:
            return  # never bounce a bounce
        if not env.sender_trustworthy:
            _suppressed("dsn", env.queue_id, len(refused))
            return
        dsn = build_dsn(original=env.content, mail_from=env.mail_from,
                        postmaster=self.settings.postmaster,
                        reporting_mta=self.settings.smtp.hostname, queue_id=env.queue_id,
                        failures=refused)
        result = await self.relay.send("", (env.mail_from,), dsn)
        sent = result.delivered
        metrics.NOTIFICATIONS.labels(kind="dsn", result="sent" if sent else "failed").inc()
        if sent:
            return
        log.warning("dsn_failed", queue_id=env.queue_id, refused=len(refused),
                    upstream_reply=self.redact(result.reply))
        try:
            if self.store is None:
                raise RuntimeError("no quarantine store configured")
            request = bounce_hold_request(decision, dsn, result.reply[:3])
            held = await asyncio.to_thread(self.store.hold, request)
        except Exception:
            log.exception("dsn_hold_failed", queue_id=env.queue_id)
            return
        metrics.QUARANTINE_HELD.inc()
        log.warning("dsn_held", queue_id=env.queue_id, quarantine_id=held.id)

    async def send_notifications(self, notices: Sequence[Notification], queue_id: str) -> None:
        for notice in notices:
            message = notification_message(notice, self.settings)
            result = await self.relay.send(self.settings.postmaster, (notice.to,), message)
            ok = result.delivered
            metrics.NOTIFICATIONS.labels(kind=notice.kind, result="sent" if ok else "failed").inc()
            log.info("notification", queue_id=queue_id, kind=notice.kind, rule=notice.rule,
                     sent=ok, upstream_reply=self.redact(result.reply))


def _suppressed(kind: str, queue_id: str, count: int) -> None:
    """A bounce or sender notice not sent: the envelope sender is not verified (it passed
    neither SPF nor DMARC and the client is not trusted), so it may be forged and writing to
    it would be backscatter."""
    metrics.NOTIFICATIONS.labels(kind=kind, result="suppressed").inc()
    log.info("sender_notice_suppressed", queue_id=queue_id, kind=kind, recipients=count,
             reason="envelope sender not verified")


# --- pure helpers ---------------------------------------------------------------------------

def _fold(decision: Decision, delivered: tuple[str, ...], held: tuple[str, ...],
          refused: dict[str, tuple[int, str]], quarantine_id: str | None,
          upstream_reply: str) -> Outcome:
    """One reply for the whole message, once every copy is delivered or held."""
    env = decision.envelope
    if not delivered and not held:
        code, text = _all_refused_reply(decision, refused)
        return Outcome(code, text, "rejected", refused=refused, upstream_reply=upstream_reply)
    if (held and (delivered or refused)) or (delivered and refused):
        outcome = "split"
    else:
        outcome = "held" if held else "relayed"
    text = accepted_reply(env.queue_id, len(decision.verdicts), held, refused, quarantine_id,
                          bounce=_bounce_kind(env))
    return Outcome(250, text, outcome, delivered=delivered, held=held, refused=refused,
                   quarantine_id=quarantine_id, upstream_reply=upstream_reply)


# Whether refused recipients are bounced, as the 250 text says it.
REFUSED_PARTS = {"sent": replies.REFUSED_PART, "null_sender": replies.REFUSED_NULL_SENDER_PART,
                 "unverified": replies.REFUSED_UNVERIFIED_SENDER_PART}


def _bounce_kind(env: Envelope) -> str:
    if not env.mail_from:
        return "null_sender"  # never bounce a bounce
    return "sent" if env.sender_trustworthy else "unverified"  # no backscatter


def accepted_reply(queue_id: str, total: int, held: Sequence[str], refused: Sequence[str],
                   quarantine_id: str | None, *, bounce: str = "sent") -> str:
    """The 250 text: Postfix's plain wording when every recipient was relayed, otherwise
    2.7.0 and how many recipients were held (with the quarantine id) or refused."""
    parts = []
    if held:
        parts.append(replies.HELD_PART.format(count=len(held), total=total,
                                              quarantine_id=quarantine_id))
    if refused:
        parts.append(REFUSED_PARTS[bounce].format(count=len(refused), total=total))
    if not parts:
        return replies.ACCEPTED.format(queue_id=queue_id)
    return replies.ACCEPTED_WITH_ACTIONS.format(queue_id=queue_id, parts=", ".join(parts))


def deferred_reply(result: RelayResult) -> str:
    """The 451 text for a copy the upstream could not take now: its own code when it answered,
    the gateway's description of the failure when it did not."""
    assert result.temporary is not None
    code, status = result.temporary
    if result.failure == "tempfail":
        return replies.UPSTREAM_DEFERRED.format(code=code)
    return replies.UPSTREAM_FAILED.format(status=status)


def _group(verdicts: Sequence[Verdict]) -> dict[Action, list[Verdict]]:
    grouped: dict[Action, list[Verdict]] = {a: [] for a in Action}
    for verdict in verdicts:
        grouped[verdict.action].append(verdict)
    return grouped


def _policy_refusals(verdicts: Sequence[Verdict]) -> dict[str, tuple[int, str]]:
    out = {}
    for v in verdicts:
        text = v.reject_text or f"{POLICY_REJECT[1]} ({', '.join(v.rules)})"
        code = int(text[:3]) if text[:3].isdigit() else POLICY_REJECT[0]
        out[v.envelope_address] = (code, text[4:] if text[:3].isdigit() else text)
    return out


def _all_refused_reply(decision: Decision,
                       refused: dict[str, tuple[int, str]]) -> tuple[int, str]:
    """Every recipient refused: pass on the first refusal (a policy reply cites the rule)."""
    for verdict in decision.verdicts:
        reply = refused.get(verdict.envelope_address)
        if reply:
            return (reply[0] if 500 <= reply[0] < 600 else 550), reply[1]
    return POLICY_REJECT


def hold_request(decision: Decision, verdicts: Sequence[Verdict]) -> HoldRequest:
    env = decision.envelope
    reasons = tuple(_reason(v, m, decision.body_notice) for v in verdicts for m in v.matches)
    rules = tuple(dict.fromkeys(r for v in verdicts for r in v.rules))
    samples = tuple({"detector": f.detector, "location": f.location, "sample": f.sample}
                    for f in decision.findings if f.sample)
    return HoldRequest(
        queue_id=env.queue_id, received=env.received_at or datetime.now(UTC),
        client_ip=env.client_ip, mail_from=env.mail_from,
        recipients=tuple(v.envelope_address for v in verdicts),
        message_id=decision.inspection.message_id, subject=decision.inspection.subject,
        content=env.content, rules=rules, reasons=reasons,
        findings=tuple(f.public() for f in decision.findings), samples=samples,
        schools=held_schools(decision, verdicts))


def held_schools(decision: Decision, verdicts: Sequence[Verdict]) -> tuple[str, ...]:
    """The schools of the sender and the held recipients: whose reviewers see the entry."""
    parties = (decision.sender, *(v.recipient for v in verdicts))
    return tuple(sorted(frozenset().union(*(p.schools for p in parties))))


def bounce_hold_request(decision: Decision, dsn: bytes, upstream_code: str) -> HoldRequest:
    """A bounce the upstream did not take, to be held for release to the original sender.

    It carries the original message's Message-ID, so a reviewer can tell which message it
    reports on; the refused recipients and their replies are in the bounce itself."""
    env = decision.envelope
    reason = (f"the bounce for recipients refused after acceptance was not taken by the "
              f"upstream ({upstream_code or 'no reply'}); release it to send it to the sender")
    return HoldRequest(
        queue_id=env.queue_id, received=datetime.now(UTC), client_ip=None, mail_from="",
        recipients=(env.mail_from,), message_id=decision.inspection.message_id,
        subject="Undelivered Mail Returned to Sender", content=dsn, rules=(BOUNCE_RULE,),
        reasons=({"recipient": env.mail_from, "rule": BOUNCE_RULE, "reason": reason,
                  "action": "hold", "monitor": False},),
        findings=())


def _reason(verdict: Verdict, match: RuleMatch, body_notice: bool) -> dict[str, Any]:
    reason = {"recipient": verdict.envelope_address, "rule": match.rule,
              "reason": match.reason, "action": str(match.action), "monitor": match.monitor}
    if match.annotation is not None and not match.monitor:
        # A held recipient may also have been annotated (P13 + P10): a release applies it.
        reason["annotation"] = match.annotation.to_dict()
        reason["body_notice"] = body_notice
    return reason


def notification_message(notice: Notification, settings: Settings) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = settings.postmaster
    msg["To"] = notice.to
    msg["Subject"] = notice.subject
    msg["Date"] = formatdate()
    msg["Message-ID"] = make_msgid(domain=settings.smtp.hostname)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-District-Policy"] = notice.rule
    msg.set_content(notice.body)
    return msg.as_bytes()
