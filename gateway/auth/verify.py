"""One message's sender authentication: SPF (envelope sender and HELO), every DKIM
signature, the ARC chain, and DMARC for the From domain, into one `AuthResults`.

Synchronous and thread-safe: it runs in the authentication threads (`gateway.auth.service`)
and in `gateway check`. Each step appends its result to a `Progress` as soon as it has it,
so a message whose deadline passes keeps what was learned and reports the rest as temperror.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from gateway.auth.dkim import verify_arc, verify_dkim
from gateway.auth.dmarc import evaluate, organisational_domain
from gateway.auth.resolver import Resolver
from gateway.auth.spf import check_spf
from gateway.config import AuthSettings
from gateway.model import AuthCheck, AuthResults

_HEAD_LIMIT = 256 * 1024  # header bytes read for the From domain and the ARC results
# A From field with its continuation lines, at the start of the header block or of a line.
_FROM_FIELD = re.compile(rb"(?:^|\n)from[ \t]*:((?:[^\r\n]|\r?\n[ \t])*)", re.IGNORECASE)
_AAR_DMARC = re.compile(r"\bdmarc\s*=\s*pass\b[^;]*?\bheader\.from\s*=\s*([\w.-]+)", re.I)


@dataclass(slots=True)
class MessageFacts:
    """What authentication looks at: the connection as the client (or XFORWARD) gave it."""

    ip: str
    helo: str
    mail_from: str
    content: bytes


@dataclass(slots=True)
class Progress:
    """Results as they arrive; read by the waiting side when the deadline passes."""

    checks: list[AuthCheck] = field(default_factory=list)
    verified: set[str] = field(default_factory=set)
    domains: dict[str, str] = field(default_factory=dict)
    done: bool = False

    def results(self, *, timed_out: bool = False) -> AuthResults:
        checks = list(self.checks)
        if timed_out and not self.done:
            checks.append(AuthCheck("dmarc", "temperror", (), "authentication deadline passed"))
        # The HELO name's SPF verifies no sender domain: its failure changes no verdict.
        temporary = (timed_out and not self.done) or any(
            c.result == "temperror" and not any(k == "smtp.helo" for k, _ in c.properties)
            for c in checks)
        return AuthResults(tuple(checks), frozenset(self.verified), temporary,
                           dict(self.domains))


def authenticate(resolver: Resolver, settings: AuthSettings, facts: MessageFacts,
                 district_domains: tuple[str, ...], progress: Progress | None = None
                 ) -> AuthResults:
    progress = progress if progress is not None else Progress()
    from_domain = from_header_domain(facts.content)
    mail_domain = facts.mail_from.rpartition("@")[2].lower().rstrip(".")
    for domain in (from_domain, mail_domain, *district_domains):
        if domain:
            progress.domains[domain] = organisational_domain(domain)
    spf_mail = check_spf(resolver, facts.ip, facts.mail_from, facts.helo)
    progress.checks.append(spf_mail)
    if spf_mail.result == "pass":
        progress.verified.add(organisational_domain(spf_mail.domain))
    if facts.helo and facts.mail_from:  # a null sender's check above was the HELO check
        progress.checks.append(check_spf(resolver, facts.ip, "", facts.helo, identity="helo"))
    head = _head(facts.content).lower()
    # dkimpy parses the whole message for each of DKIM and ARC: only when there is a
    # signature or a seal to verify (most mail has one of the two at most).
    dkim_checks = (verify_dkim(resolver, facts.content, settings.max_signatures)
                   if _has_field(head, b"dkim-signature") else [])
    progress.checks.extend(dkim_checks)
    dkim_pass = [c.domain for c in dkim_checks if c.result == "pass" and c.domain]
    progress.verified.update(organisational_domain(d) for d in dkim_pass)
    if _has_field(head, b"arc-seal"):
        arc = verify_arc(resolver, facts.content,
                         lambda sealer: sealer in settings.trusted_arc_sealers)
        progress.checks.append(arc)
        if arc.result == "pass" and arc.domain in settings.trusted_arc_sealers:
            progress.verified.update(_sealer_vouches(facts.content))
    if from_domain:
        spf_pass = [spf_mail.domain] if spf_mail.result == "pass" else []
        progress.checks.append(evaluate(resolver, from_domain, spf_pass, dkim_pass))
    else:
        progress.checks.append(AuthCheck("dmarc", "permerror", (), "no single From domain"))
    progress.done = True
    return progress.results()


def from_header_domain(content: bytes) -> str:
    """The domain of the From header's one address; "" when there are none or several
    (RFC 7489 6.6.1: such a message cannot pass DMARC)."""
    values = [m.group(1).decode("utf-8", "replace")
              for m in _FROM_FIELD.finditer(_head(content))]
    addresses = [a for _, a in getaddresses([" ".join(v.split()) for v in values]) if "@" in a]
    if len(values) != 1 or len(addresses) != 1:
        return ""
    return addresses[0].rpartition("@")[2].lower().rstrip(".").strip(">")


def _has_field(lowered_head: bytes, name: bytes) -> bool:
    return lowered_head.startswith(name + b":") or b"\n" + name + b":" in lowered_head


def _sealer_vouches(content: bytes) -> set[str]:
    """Organisational domains a trusted sealer's newest ARC-Authentication-Results says
    passed DMARC on its hop (a forwarder or list that changed the message since)."""
    headers = BytesHeaderParser().parsebytes(_head(content))
    newest: tuple[int, str] | None = None
    for value in headers.get_all("ARC-Authentication-Results") or []:
        text = " ".join(str(value).split())
        match = re.match(r"\s*i\s*=\s*(\d+)\s*;", text)
        if match and (newest is None or int(match.group(1)) > newest[0]):
            newest = (int(match.group(1)), text)
    if newest is None:
        return set()
    return {organisational_domain(d) for d in _AAR_DMARC.findall(newest[1])}


def _head(content: bytes) -> bytes:
    end = content.find(b"\r\n\r\n", 0, _HEAD_LIMIT)
    return content[:end + 2] if end != -1 else content[:_HEAD_LIMIT]
