"""Envelope → Decision: the only place that knows the order of the steps.

Pure: no sockets, no database writes. `gateway check` and `gateway serve` both call `decide`,
so there is one implementation of "what should happen to this message".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from email.utils import getaddresses

from gateway.directory import PartyLookup
from gateway.model import (
    Action,
    ContactHistory,
    ContactPlan,
    Decision,
    Envelope,
    Inspection,
    Party,
    Role,
    RuleMatch,
    Verdict,
)
from gateway.runtime import Runtime


def decide(envelope: Envelope, runtime: Runtime, history: ContactHistory,
           inspection: Inspection | None = None) -> Decision:
    """Inspect the content once (unless `inspection` is that already), classify the parties,
    let the policy decide per recipient."""
    if inspection is None:
        inspection = runtime.inspector.inspect(envelope.content)
    return decide_classified(envelope, runtime, history, inspection,
                             classify(envelope, runtime.directory, inspection))


@dataclass(frozen=True, slots=True)
class Parties:
    """Who sent the message and who it is for, as the directory knows them."""

    sender: Party
    recipients: tuple[Party, ...]


def classify(envelope: Envelope, directory: PartyLookup, inspection: Inspection) -> Parties:
    return Parties(classify_sender(directory, envelope.mail_from, inspection.from_header),
                   tuple(directory.party(rcpt) for rcpt in envelope.rcpt_tos))


def contact_plan(envelope: Envelope, runtime: Runtime, parties: Parties,
                 inspection: Inspection) -> ContactPlan:
    """The P5/P6 counts deciding this message may need and the contacts it adds: the I/O
    shell counts and records them in one store transaction, off the event loop, and decides
    with a `CountedHistory` of the counts."""
    return runtime.policy.contact_plan(envelope, parties.sender, parties.recipients,
                                       inspection)


def decide_classified(envelope: Envelope, runtime: Runtime, history: ContactHistory,
                      inspection: Inspection, parties: Parties) -> Decision:
    """`decide` once the content is inspected and the parties are known."""
    decision = runtime.policy.decide(envelope, parties.sender, parties.recipients, inspection,
                                     history)
    verdicts = tuple(replace(verdict, rcpt=rcpt)
                     for verdict, rcpt in zip(decision.verdicts, envelope.rcpt_tos, strict=True))
    return replace(decision, verdicts=verdicts)


def classify_sender(directory: PartyLookup, mail_from: str, from_header: str | None) -> Party:
    """The envelope sender's party, unless that is null or an outsider and the From header
    names someone the directory knows.

    Why: staff rules (P1, P2, P7–P11) must not be dodged by sending with `MAIL FROM:<>` or a
    throwaway envelope address while the From header says who wrote it. Taking the stricter
    reading fails closed; a spoofed From from outside is also marked by P13.
    """
    envelope_party = directory.party(mail_from) if mail_from else None
    if envelope_party is not None and envelope_party.role is not Role.EXTERNAL:
        return envelope_party
    for _name, address in getaddresses([from_header or ""]):
        if address:
            header_party = directory.party(address)
            if header_party.role is not Role.EXTERNAL:
                return header_party
    return envelope_party or Party(mail_from, Role.EXTERNAL, False)


def fail_closed(envelope: Envelope, reason: str) -> Decision:
    """Hold every recipient when the decision itself could not be made: never lose mail.

    Parties are described by address only: the directory may be what failed.
    """
    sender = Party(envelope.mail_from, Role.EXTERNAL, False)
    match = RuleMatch("internal-error", Action.HOLD,
                      f"inspection or policy could not finish ({reason}); held for review")
    verdicts = tuple(Verdict(Party(rcpt, Role.EXTERNAL, False), Action.HOLD, (match,), rcpt)
                     for rcpt in envelope.rcpt_tos)
    return Decision(envelope, sender, verdicts, Inspection(complete=False))
