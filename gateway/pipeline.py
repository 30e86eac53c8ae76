"""Envelope → Decision: the only place that knows the order of the steps.

Pure: no sockets, no database writes. `gateway check` and `gateway serve` both call `decide`,
so there is one implementation of "what should happen to this message".
"""

from __future__ import annotations

from gateway.model import (
    Action,
    ContactHistory,
    Decision,
    Envelope,
    Inspection,
    Party,
    Role,
    RuleMatch,
    Verdict,
)
from gateway.runtime import Runtime


def decide(envelope: Envelope, runtime: Runtime, history: ContactHistory) -> Decision:
    """Classify the parties, inspect the content once, and let the policy decide per recipient."""
    directory = runtime.directory
    sender = directory.party(envelope.mail_from)
    recipients = [directory.party(rcpt) for rcpt in envelope.rcpt_tos]
    inspection = runtime.inspector.inspect(envelope.content)
    return runtime.policy.decide(envelope, sender, recipients, inspection, history)


def fail_closed(envelope: Envelope, reason: str) -> Decision:
    """Hold every recipient when the decision itself could not be made (DESIGN habit 3).

    Parties are described by address only: the directory may be what failed.
    """
    sender = Party(envelope.mail_from, Role.EXTERNAL, False)
    match = RuleMatch("internal-error", Action.HOLD,
                      f"inspection or policy could not finish ({reason}); held for review")
    verdicts = tuple(Verdict(Party(rcpt, Role.EXTERNAL, False), Action.HOLD, (match,))
                     for rcpt in envelope.rcpt_tos)
    return Decision(envelope, sender, verdicts, Inspection(complete=False))
