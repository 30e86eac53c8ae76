"""Envelope → Decision: the only place that knows the order of the steps.

Pure: no sockets, no database writes. `gateway check` and `gateway serve` both call `decide`,
so there is one implementation of "what should happen to this message".
"""

from __future__ import annotations

from gateway.model import ContactHistory, Decision, Envelope
from gateway.runtime import Runtime


def decide(envelope: Envelope, runtime: Runtime, history: ContactHistory) -> Decision:
    """Classify the parties, inspect the content once, and let the policy decide per recipient."""
    directory = runtime.directory
    sender = directory.party(envelope.mail_from)
    recipients = [directory.party(rcpt) for rcpt in envelope.rcpt_tos]
    inspection = runtime.inspector.inspect(envelope.content)
    return runtime.policy.decide(envelope, sender, recipients, inspection, history)
