"""Shared by `gateway check` and `gateway policy test`: build an envelope from a message file,
read the contact history without writing, and explain a Decision in words or JSON.

The explanation names rules, reasons, roles and detector counts; never a finding's value.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.utils import getaddresses
from typing import Any

from gateway.config import Settings
from gateway.model import ContactHistory, Decision, Envelope, NoHistory, Party

DEFAULT_CLIENT_IP = "127.0.0.1"


def header_addresses(raw: bytes, names: Sequence[str]) -> list[str]:
    """Addresses from the named headers, in order, without duplicates."""
    msg = message_from_bytes(raw, policy=email_policy.compat32)
    values = [str(v) for name in names for v in (msg.get_all(name) or [])]
    found = [addr.strip() for _, addr in getaddresses(values) if addr and "@" in addr]
    return list(dict.fromkeys(found))


def envelope_for(raw: bytes, settings: Settings, *, mail_from: str | None = None,
                 rcpts: Sequence[str] = (), client_ip: str | None = None,
                 helo: str | None = None) -> Envelope:
    """The envelope `serve` would see: From header as sender and To+Cc as recipients unless
    given, trust decided from the client address against trusted_networks."""
    sender = mail_from if mail_from is not None else next(
        iter(header_addresses(raw, ["From"])), "")
    recipients = tuple(rcpts) or tuple(header_addresses(raw, ["To", "Cc"]))
    ip = client_ip or DEFAULT_CLIENT_IP
    return Envelope(sender, recipients, raw, client_ip=ip,
                    client_trusted=settings.is_trusted(ip), helo=helo, queue_id="check",
                    received_at=datetime.now(UTC))


def authenticated(envelope: Envelope, settings: Settings) -> Envelope:
    """The envelope as `serve` decides it for an untrusted client: SPF, DKIM, DMARC and ARC
    checked against the configured resolvers, within the same deadline, their results in the
    header on top and on the envelope."""
    import asyncio
    from dataclasses import replace

    from gateway.auth.service import Authenticator
    from gateway.auth.verify import MessageFacts

    auth = Authenticator(settings)
    try:
        facts = MessageFacts(envelope.client_ip or "", envelope.helo or "",
                             envelope.mail_from, envelope.content)
        results = asyncio.run(auth.check(facts))
    finally:
        auth.close()
    return replace(envelope, auth=results, content=auth.annotate(envelope.content, results))


@contextlib.contextmanager
def read_only_history(settings: Settings) -> Iterator[ContactHistory]:
    """The quarantine store's contact history opened read-only, or an empty history when
    there is no store (yet): a dry run must never create or change a database."""
    from gateway.quarantine import open_store

    try:
        store = open_store(settings, readonly=True)  # no database yet: an empty history
    except Exception as exc:  # unreadable (permissions, corrupt): say so, P6 may differ
        print(f"gateway: warning: contact history unreadable, P6 counts as no earlier "
              f"contacts: {exc}", file=sys.stderr)
        yield NoHistory()
        return
    try:
        yield store
    finally:
        store.close()


def _account(party: Party) -> str:
    if party.district_account:
        return "District account"
    return "personal account" if party.role.value in ("staff", "student") else "outside"


def report(decision: Decision) -> dict[str, Any]:
    """The `check --json` object (docs/policy.md) plus the reasons and notifications."""
    out = decision.public()
    for entry, verdict in zip(out["recipients"], decision.verdicts, strict=True):
        entry["reasons"] = [{"rule": m.rule, "action": str(m.action), "reason": m.reason,
                             "monitor": m.monitor} for m in verdict.matches]
        entry["annotated"] = bool(verdict.annotations) and verdict.action.value == "annotate"
    env = decision.envelope
    out["client"] = {"ip": env.client_ip, "trusted": env.client_trusted, "helo": env.helo}
    out["authentication"] = _authentication(decision)
    out["notifications"] = [{"kind": n.kind, "to": n.to, "rule": n.rule}
                            for n in decision.notifications]
    out["contacts_recorded_by_serve"] = len(decision.contacts)
    return out


def _authentication(decision: Decision) -> dict[str, Any]:
    """What sender authentication found, and what it means for the From domain."""
    env = decision.envelope
    if env.client_trusted:
        return {"checked": False, "reason": "client in trusted_networks: not checked"}
    if env.auth is None:
        return {"checked": False, "reason": "not authenticated (--no-dns or disabled): a "
                "claimed District domain counts as unverified"}
    out: dict[str, Any] = {"checked": True, **env.auth.public()}
    domain = decision.inspection.from_header and next(
        (a.rpartition("@")[2] for _, a in getaddresses([decision.inspection.from_header])
         if "@" in a), None)
    if domain:
        out["from_domain"] = {"domain": domain.lower(), "verified": env.auth.verifies(domain),
                              "reason": env.auth.explain(domain)}
    return out


def explain(decision: Decision) -> str:
    """A readable account of every verdict: who is who, what was found, which rules and why."""
    env, sender = decision.envelope, decision.sender
    lines = [f"sender    {sender.address or '<>'} ({sender.role}, {_account(sender)})",
             f"client    {env.client_ip} ({'trusted' if env.client_trusted else 'untrusted'}"
             " network)"]
    auth = _authentication(decision)
    if not auth["checked"]:
        lines.append(f"auth      {auth['reason']}")
    else:
        for check in auth["checks"]:
            detail = " ".join(f"{k}={v}" for k, v in check.items()
                              if k not in ("method", "result", "domain", "reason"))
            why = f" ({check['reason']})" if check.get("reason") else ""
            lines.append(f"auth      {check['method']}={check['result']} {detail}{why}".rstrip())
        if "from_domain" in auth:
            lines.append(f"          {auth['from_domain']['reason']}")
    if decision.findings:
        for f in decision.findings:
            distinct = f", {f.distinct} distinct" if f.distinct else ""
            lines.append(f"finding   {f.detector} x{f.count}{distinct} in {f.location}")
    else:
        lines.append("finding   none")
    for verdict in decision.verdicts:
        who = verdict.recipient
        lines.append(f"recipient {who.address} ({who.role}, {_account(who)}): "
                     f"{verdict.action.value.upper()}")
        if not verdict.matches:
            lines.append("          no rule matched: relay")
        for m in verdict.matches:
            mode = " [monitor: not enforced]" if m.monitor else ""
            lines.append(f"          {m.rule} {m.action.value}: {m.reason}{mode}")
    for note in decision.notifications:
        lines.append(f"notify    {note.kind} {note.to} (rule {note.rule})")
    return "\n".join(lines)
