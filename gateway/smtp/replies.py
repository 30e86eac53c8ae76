"""The replies the gateway itself gives SMTP clients, by name.

Each is the exact line on the wire (code, enhanced status code, text), or a template whose
fields are filled in where it is sent (`gateway.actions.execute`). Postfix writes the reply to
DATA into mail.log (`status=sent (250 …)`) for every recipient of the message, so these texts
are what a Postfix admin greps for: keep them stable. They carry counts and ids only, never an
address or anything found in the message.
"""

from __future__ import annotations

# Sessions
TOO_MANY_CONNECTIONS = "421 4.3.2 Too many connections or shutting down, try again later"
TOO_MANY_FROM_CLIENT = "421 4.7.0 Too many connections from your address, try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down"
TIMEOUT = "421 4.4.2 Error: timeout exceeded"
SESSION_ERROR = "421 4.3.0 Temporary local problem, closing connection"

# RCPT TO
RCPT_OK = "250 2.1.5 Ok"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
ROUTING_REFUSED = "550 5.7.1 Routing characters in the local part are not accepted"
NEEDS_SMTPUTF8 = "553 5.6.7 Non-ASCII address needs SMTPUTF8"
RELAY_DENIED = "554 5.7.1 Relay access denied"

# DATA: (code, the rest of the line), as the executor's Outcome carries them
BARE_NEWLINE = (550, "5.5.2 Message contains a bare CR or LF (SMTP smuggling protection)")
PROCESSING_TIMEOUT = (451, "4.3.0 Processing timed out, try again later")
STORE_FAILED = (451, "4.3.0 Temporary failure storing message, try again later")
POLICY_REJECT = (550, "5.7.1 Message refused by district policy")

# DATA accepted (250). Every recipient relayed: Postfix's own wording.
ACCEPTED = "2.0.0 Ok: queued as {queue_id}"
# Any recipient held or refused by the gateway while the message was accepted: enhanced code
# 2.7.0 (a security or policy outcome, as Amavis answers `250 2.7.0 Ok, discarded, id=…`), then
# one part per outcome. `grep '250 2.7.0'` finds every message the gateway did not simply pass;
# `grep 'held for review, id='` the held ones, with the id `gateway quarantine show` takes.
ACCEPTED_WITH_ACTIONS = "2.7.0 Ok: queued as {queue_id}, {parts}"
HELD_PART = "{count} of {total} held for review, id={quarantine_id}"
REFUSED_PART = "{count} of {total} refused, bounce to sender"
REFUSED_NULL_SENDER_PART = "{count} of {total} refused, no bounce (null sender)"
# A sender that passed neither SPF nor DMARC from an untrusted client may be forged: a bounce to
# it would be backscatter.
REFUSED_UNVERIFIED_SENDER_PART = "{count} of {total} refused, no bounce (unverified sender)"

# DATA deferred because a copy could not be relayed. The upstream's own 4xx is passed on by
# code only (its text may quote an address); the log line `upstream_deferred` has the cause.
UPSTREAM_DEFERRED = "4.4.0 Upstream deferred the message ({code}), try again later"
# No reply from the upstream at all: the gateway's own description (`4.4.1 upstream
# unreachable`, `4.4.2 upstream connection lost`, …) and the same advice.
UPSTREAM_FAILED = "{status}, try again later"

# Any hook's unexpected error: try again later, never aiosmtpd's default 500, never the
# exception's name.
TEMPFAIL = "451 4.3.0 Temporary local problem, try again later"
